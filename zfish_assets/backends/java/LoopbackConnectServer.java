package zfish.connect;

import java.lang.reflect.Method;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;

import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.connect.config.Connect$;
import org.apache.spark.sql.connect.service.SparkConnectInterceptorRegistry$;
import org.apache.spark.sql.connect.service.SparkConnectService;
import org.apache.spark.sql.connect.service.SparkConnectService$;
import org.sparkproject.connect.grpc.Server;
import org.sparkproject.connect.grpc.netty.NettyServerBuilder;
import org.sparkproject.connect.grpc.protobuf.services.ProtoReflectionService;

/**
 * Spark 3.5.4's {@code SparkConnectServer} bound to 127.0.0.1 and guarded by {@link SecretInterceptor}.
 *
 * <p>Spark 3.5's server binds every interface ({@code NettyServerBuilder.forPort}); the setting
 * {@code spark.connect.grpc.binding.address} arrives with Spark 4.0 and 3.5.4 ignores it. So this main
 * does what {@code SparkConnectServer.main} and {@code SparkConnectService.start} do, with one change:
 * the gRPC server is built for an address ({@code spark.zfish.connect.bind_address}, default 127.0.0.1)
 * and always carries the guard, outermost. Port 0 lets the kernel pick a free port, so engines started
 * at once never race for one; the port bound is written to {@code spark.zfish.connect.port_file}.
 */
public final class LoopbackConnectServer {
    static final String BIND_CONF = "spark.zfish.connect.bind_address";
    static final String PORT_FILE_CONF = "spark.zfish.connect.port_file";
    /** Exit status when the port is taken, which the Python side reports with the port's holder. */
    static final int PORT_TAKEN = 3;

    public static void main(String[] args) throws Exception {
        SparkSession session = SparkSession.builder().getOrCreate();
        try {
            SparkConf conf = session.sparkContext().getConf();
            Server server;
            try {
                server = grpcServer(conf).start();
            } catch (java.io.IOException e) {
                if (!(e instanceof BindException) && !(e.getCause() instanceof BindException)) {
                    throw e;
                }
                System.err.println("zfish: port " + conf.get("spark.connect.grpc.binding.port") + " on "
                    + conf.get(BIND_CONF, "127.0.0.1") + " is taken: " + e.getMessage());
                System.exit(PORT_TAKEN);
                return;
            }
            SparkConnectService$.MODULE$.server_$eq(server);
            // SparkConnectService.start's second half (the server's listener and UI tab), private in 3.5.
            Method ui = SparkConnectService$.class.getDeclaredMethod("createListenerAndUI", SparkContext.class);
            ui.setAccessible(true);
            ui.invoke(SparkConnectService$.MODULE$, session.sparkContext());
            writePort(conf.get(PORT_FILE_CONF), server.getPort());
            System.err.println("zfish: Spark Connect server listening on " + server.getListenSockets());
            server.awaitTermination();
        } finally {
            session.stop();
        }
    }

    /** SparkConnectService.startGRPCService of Spark 3.5.4, for an address, with the guard. */
    static Server grpcServer(SparkConf conf) {
        boolean debug = conf.getBoolean("spark.connect.grpc.debug.enabled", true);
        int port = conf.getInt("spark.connect.grpc.binding.port", 15002);
        long maxInbound = (Long) conf.get(Connect$.MODULE$.CONNECT_GRPC_MAX_INBOUND_MESSAGE_SIZE());
        NettyServerBuilder builder = NettyServerBuilder
            .forAddress(new InetSocketAddress(conf.get(BIND_CONF, "127.0.0.1"), port))
            .maxInboundMessageSize((int) maxInbound);
        builder.addService(new SparkConnectService(debug));
        SparkConnectInterceptorRegistry$.MODULE$.chainInterceptors(builder);
        if (debug) {
            builder.addService(ProtoReflectionService.newInstance());
        }
        // Added last, so it runs first: no configured interceptor sees an unauthenticated call.
        builder.intercept(new SecretInterceptor(conf.get(SecretInterceptor.SECRET_FILE_CONF, "")));
        return builder.build();
    }

    private static void writePort(String file, int port) throws java.io.IOException {
        Path target = Paths.get(file);
        Path staged = target.resolveSibling(target.getFileName() + ".tmp");
        Files.writeString(staged, Integer.toString(port), StandardCharsets.US_ASCII);
        Files.move(staged, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }
}
