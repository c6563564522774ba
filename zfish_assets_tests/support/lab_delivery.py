"""What a lab really delivers: observation files of every kind of bad line, each with the fate stated for
it by hand (`Delivered`), a first round and the fixes of a second."""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass
from pathlib import Path


PREFIX = "use-cases/fish-demo"
D1, D2, LABELS = "2025-05-01", "2025-05-02", "2025-05-05"
DAYS = (D1, D2, "2025-05-03", "2025-05-04", LABELS)
GENES = '{"gene_a": 0.5, "gene_b": -1.25, "gene_c": 2}'
MISNAMED = "day=2025-5-03"


def row(image: str, *, fish: str = "zfish_A", timestamp: str = '"2025-05-01T09:00:00Z"', age: str = "12",
        treatment: str = '"drug_a"', length: str = "5.25", extra: str = "") -> str:
    """An observation's JSON text, each value given as the JSON literal a lab's tool wrote."""
    return (f'{{"fish_id": {json.dumps(fish)}, "image_id": {image}, '
            f'"timestamp": {timestamp}, "age_days": {age}, "treatment": {treatment}, "genetic_markers": {GENES}, '
            f'"length_mm": {length}, "sex": "F"{extra}}}')


@dataclass(frozen=True)
class Delivered:
    """One observation file: its kind, its bytes, and the fate stated for it (None: accepted)."""

    kind: str
    content: bytes
    reason: str | None

    def rows(self) -> int:
        """The rows it delivers (a compressed file's too), counted from its bytes."""
        content = gzip.decompress(self.content) if self.content.startswith(b"\x1f\x8b") else self.content
        try:
            if isinstance(json.loads(content), dict):
                return 1  # one object, however many lines it is written over
        except ValueError:
            pass
        return sum(1 for line in content.splitlines() if line.strip())


def text(line: str) -> bytes:
    return (line + "\n").encode()


ROUND_ONE: dict[tuple[str, str], Delivered] = {
    (D1, "good.json"): Delivered("good", text(row('"img-g1"')), None),
    (D1, "big-double.json"): Delivered("number too large for a double", text(row('"img-x1"', length="1e400")),
                                       "out_of_range"),
    (D1, "big-int.json"): Delivered("integer beyond 64 bits", text(row('"img-x2"', age="1" + "0" * 30)), "out_of_range"),
    (D1, "not-exact.json"): Delivered("integer a double cannot hold exactly",
                                      text(row('"img-x3"', length="9007199254740993")), "out_of_range"),
    (D1, "underflow.json"): Delivered("number that underflows to 0", text(row('"img-x4"', length="1e-400")),
                                      "out_of_range"),
    (D1, "utc-overflow.json"): Delivered("timestamp whose UTC leaves the datetime range",
                                         text(row('"img-x5"', timestamp='"0001-01-01T00:30:00+01:00"')), "out_of_range"),
    (D1, "before-1900.json"): Delivered("timestamp before 1900", text(row('"img-x6"', timestamp='"1899-12-31T23:00:00Z"')),
                                        "out_of_range"),
    (D1, "camera-clock.json"): Delivered("far-future timestamp (camera clock)",
                                         text(row('"img-clock"', timestamp='"2099-05-01T09:00:00Z"')), None),
    (D1, "surrogate.json"): Delivered("unpaired surrogate escape", text(row('"img-sur"', treatment='"drug_\\ud800"')),
                                      "not_utf8"),
    (D1, "latin1.json"): Delivered("bytes that are not UTF-8", text(row('"img-lat"', treatment='"caf\u00e9"'))
                                   .decode().encode("latin-1"), "not_utf8"),
    (D1, "empty-key.json"): Delivered("empty image_id", text(row('""')), "empty_key"),
    (D1, "space-key.json"): Delivered("image_id with a space", text(row('"img 7"')), None),
    (D1, "newline-key.json"): Delivered("image_id with an escaped newline", text(row('"img\\n8"')), None),
    (D1, "quoted-key.json"): Delivered("image_id with quotes and unicode", text(row(json.dumps('img "q" \u00fc \U0001f41f'))),
                                       None),
    (D1, "long-key.json"): Delivered("image_id of 10 kB", text(row(json.dumps("k" * 10_240))), None),
    (D1, "dup-field.json"): Delivered("a field twice in one object",
                                      text(row('"img-dup"', extra=', "fish_id": "zfish_B"')), "duplicate_field"),
    (D1, "case-field.json"): Delivered("field names differing only in case", text(row('"img-case"', extra=', "SEX": "M"')),
                                       "duplicate_field"),
    (D1, "deep.json"): Delivered("nesting deeper than any engine's limit",
                                 text(row('"img-deep"', extra=', "notes": ' + "[" * 200 + "]" * 200)), "malformed_json"),
    (D1, "bom-crlf.json"): Delivered("byte-order mark and CRLF line ends",
                                     b"\xef\xbb\xbf" + row('"img-bom1"').encode() + b"\r\n" + row('"img-bom2"').encode() + b"\r\n",
                                     None),
    (D1, "nul.json"): Delivered("NUL and line separator inside a string",
                                text(row('"img-nul"', treatment='"a\\u0000b\\u2028c"')), None),
    (D1, "camera2/img-n1.json"): Delivered("file in a subfolder", text(row('"img-n1"')), "nested_file"),
    (D1, "pretty.json"): Delivered("one object pretty-printed over many lines (an editor)",
                                   json.dumps(json.loads(row('"img-pretty"')), indent=2).encode(), "multiline_json"),
    (D1, "img-z.json.gz"): Delivered("gzip-compressed file", gzip.compress(text(row('"img-z"')), mtime=0),
                                     "not_a_data_file"),
    (D2, "img.json"): Delivered("short ids that a space-split ledger would invent", text(row('"img"', fish="zfish_B")), None),
    (D2, "seven.json"): Delivered("short ids that a space-split ledger would invent", text(row('"7"', fish="zfish_B")), None),
    (D2, "space-key-again.json"): Delivered("image_id with a space, again on another day",
                                            text(row('"img 7"', fish="zfish_B")), "key_in_other_day"),
    (D2, "long-key-again.json"): Delivered("image_id of 10 kB, again on another day",
                                           text(row(json.dumps("k" * 10_240), fish="zfish_B")), "key_in_other_day"),
}


FIXES: dict[tuple[str, str], Delivered] = {  # round two: what the lab sends after reading the quarantine
    (D1, "camera-clock.json"): Delivered("far-future timestamp (camera clock)", text(row('"img-clock"')), None),
    (D1, "surrogate.json"): Delivered("unpaired surrogate escape", text(row('"img-sur"', treatment='"drug_s"')), None),
    (D1, "latin1.json"): Delivered("bytes that are not UTF-8", text(row('"img-lat"', treatment='"caf\u00e9"')), None),
    (D1, "camera2/img-n1.json"): None,  # moved up into the day folder:
    (D1, "img-n1.json"): Delivered("file in a subfolder", text(row('"img-n1"')), None),
    (D1, "pretty.json"): Delivered("one object pretty-printed over many lines (an editor)", text(row('"img-pretty"')),
                                   None),
}


LABEL_LINES = b'{"fish_id": "zfish_A", "condition_developed": true}\n{"fish_id": "zfish_B", "condition_developed": false}\n'


def round_two() -> dict[tuple[str, str], Delivered]:
    return {k: v for k, v in {**ROUND_ONE, **FIXES}.items() if v is not None}


def write_delivery(root: Path, files: dict[tuple[str, str], Delivered]) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    for (day, name), delivered in files.items():
        path = root / "observations" / f"day={day}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(delivered.content)
    (root / "outcomes" / f"day={LABELS}").mkdir(parents=True)
    (root / "outcomes" / f"day={LABELS}" / "labels.json").write_bytes(LABEL_LINES)
    return root
