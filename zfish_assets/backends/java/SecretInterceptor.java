package zfish.connect;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.MessageDigest;

import org.apache.spark.SparkEnv;
import org.sparkproject.connect.grpc.Grpc;
import org.sparkproject.connect.grpc.Metadata;
import org.sparkproject.connect.grpc.ServerCall;
import org.sparkproject.connect.grpc.ServerCallHandler;
import org.sparkproject.connect.grpc.ServerInterceptor;
import org.sparkproject.connect.grpc.Status;

/**
 * The warm engine's guard: every gRPC call must come from this machine's loopback and carry the
 * server's secret in the {@code x-zfish-token} header (a PySpark Connect client sends each unknown
 * {@code sc://host:port/;name=value} parameter as a header). Spark 3.5's Connect server has no
 * authentication of its own; this interceptor is how zfish closes it.
 *
 * <p>The secret is read once, at construction, from the file named by the Spark setting
 * {@code spark.zfish.connect.secret_file} (mode 0600 in the engine's data dir), never from the
 * command line or the Spark conf, which the process list and clients can read.
 */
public final class SecretInterceptor implements ServerInterceptor {
    public static final String HEADER = "x-zfish-token";
    public static final String SECRET_FILE_CONF = "spark.zfish.connect.secret_file";
    private static final Metadata.Key<String> KEY = Metadata.Key.of(HEADER, Metadata.ASCII_STRING_MARSHALLER);

    private final byte[] secret;

    /** For {@code spark.connect.grpc.interceptor.classes}, which instantiates with no arguments. */
    public SecretInterceptor() {
        this(SparkEnv.get().conf().get(SECRET_FILE_CONF, ""));
    }

    public SecretInterceptor(String secretFile) {
        if (secretFile.isEmpty()) {
            throw new IllegalStateException(SECRET_FILE_CONF + " is not set: the server would have no secret");
        }
        try {
            String text = Files.readString(Paths.get(secretFile), StandardCharsets.US_ASCII).trim();
            if (text.isEmpty()) {
                throw new IllegalStateException(secretFile + " (" + SECRET_FILE_CONF + ") is empty");
            }
            secret = text.getBytes(StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read the server's secret from " + secretFile + ": " + e, e);
        }
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                        ServerCallHandler<Q, R> next) {
        SocketAddress peer = call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
        if (!isLoopback(peer)) {
            return refuse(call, Status.PERMISSION_DENIED.withDescription(
                "zfish's warm engine serves clients on this machine's loopback only; refused " + peer));
        }
        String given = headers.get(KEY);
        if (given == null) {
            return refuse(call, Status.UNAUTHENTICATED.withDescription(
                "zfish's warm engine needs its secret: connect with the URL `zfish engine start` prints "
                + "(it ends with ;" + HEADER + "=...)"));
        }
        if (!MessageDigest.isEqual(secret, given.getBytes(StandardCharsets.US_ASCII))) {
            return refuse(call, Status.UNAUTHENTICATED.withDescription(
                "wrong " + HEADER + " for zfish's warm engine (each start makes a new secret): take the URL "
                + "from `zfish engine start` again"));
        }
        return next.startCall(call, headers);
    }

    static boolean isLoopback(SocketAddress peer) {
        return peer instanceof InetSocketAddress
            && ((InetSocketAddress) peer).getAddress() != null
            && ((InetSocketAddress) peer).getAddress().isLoopbackAddress();
    }

    private static <Q, R> ServerCall.Listener<Q> refuse(ServerCall<Q, R> call, Status status) {
        call.close(status, new Metadata());
        return new ServerCall.Listener<Q>() {};
    }
}
