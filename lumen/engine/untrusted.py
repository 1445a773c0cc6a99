"""The one place that reads files Lumen did not write itself (or that may have been tampered with), and the one
place that writes files so that they are complete or absent.

Reading: ``read_json`` opens without blocking (a FIFO, a socket or a device never hangs it), accepts only a
regular file of at most ``MAX_JSON_BYTES``, and parses JSON that nests at most ``MAX_DEPTH`` deep, whose
integers fit in 64 bits and whose numbers are finite (no NaN or Infinity). Anything else is one ``DataError``
naming the file and the cause.

Writing: ``atomic_write(path)`` hands out a temporary name in the same folder; when the block ends without an
error the file gets the permissions of any new file (0666 less the umask, whatever mode its writer chose), is
flushed to disk and renamed over ``path``, otherwise it is removed. A full disk or a crash
therefore leaves the old file (or nothing), never a half-written one.

Printing: ``printable(text)`` escapes control characters (ANSI escapes, carriage returns, NULs, bidirectional
overrides) so that text from a file can be shown on a terminal as it is.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
import tempfile
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lumen.engine.errors import DataError

MAX_JSON_BYTES = 8 * 2**20  # a 5,000-node spec is well under 2 MB
MAX_DEPTH = 64  # a spec nests 5 deep; 64 leaves room and keeps the parser's recursion small
MAX_INT = 2**63 - 1  # integers beyond int64 are refused while parsing (none of Lumen's numbers needs more)
_MAX_INT_DIGITS = 19


class UnreadableFile(DataError):
    """A file that is not a regular file, is too large, or does not hold acceptable JSON."""


# ---- reading ------------------------------------------------------------------------------------------------


def read_bytes(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; never blocks on a FIFO or device."""
    path = Path(path)
    name = shown(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UnreadableFile(f"{name}: no such file") from None
    except IsADirectoryError:
        raise UnreadableFile(f"{name} is a folder, not a {what}") from None
    except OSError as exc:
        raise UnreadableFile(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UnreadableFile(f"{name} is a folder, not a {what}")
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(f"{name} is not a regular file (a pipe, socket or device), so not a {what}")
        if info.st_size > limit:
            raise UnreadableFile(f"{name} is {_size(info.st_size)}, more than a {what} may be ({_size(limit)})")
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # the file grew while being read
                raise UnreadableFile(f"{name} is more than a {what} may be ({_size(limit)})")
        return b"".join(chunks)
    except OSError as exc:
        raise UnreadableFile(f"cannot read {name}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_text(path: Path, limit: int, what: str) -> str:
    """A UTF-8 text file (a byte-order mark allowed), read with ``read_bytes``'s checks."""
    data = read_bytes(path, limit, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableFile(f"{shown(path.name)} is not a text file, so not a {what}") from None


def read_json(path: str | Path, what: str = "JSON file", limit: int = MAX_JSON_BYTES) -> Any:
    """The JSON value in ``path``, read with the limits above; ``what`` names the kind of file in messages."""
    path = Path(path)
    text = read_text(path, limit, what)
    try:
        return parse_json(text)
    except UnreadableFile as exc:
        raise UnreadableFile(f"{shown(path.name)}: {exc}") from None


MAX_CSV_BYTES = 64 * 2**20  # a million rows of a few columns
MAX_CSV_COLUMNS = 1024
MAX_VALUE = float(np.finfo(np.float32).max)  # values are kept as float32: anything beyond is out of range


def read_csv_numbers(path: str | Path, what: str = "CSV file", limit: int = MAX_CSV_BYTES) -> tuple[list[str], Any]:
    """The column names (the header row, or ``column 1`` … when the first row is numbers) and the values as a
    rows×columns float32 numpy array: every row as wide as the first, every value a finite number within float32's
    range. Plain numbers are parsed by numpy (a 64 MiB file of short rows in seconds); anything numpy refuses is
    read again cell by cell to name the row and column at fault."""
    import csv
    import io

    path = Path(path)
    text = read_text(path, limit, what)
    first = text.split("\n", 1)[0]
    try:
        head = next(csv.reader([first]), [])
    except csv.Error:
        head = []
    if head and any(cell.strip() for cell in head) and len(head) <= MAX_CSV_COLUMNS:
        header = None if all(_numeric(c) for c in head) else [printable(c.strip()) for c in head]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # "input contained no data" and the like: said precisely below
                values = np.loadtxt(
                    io.StringIO(text),
                    delimiter=",",
                    quotechar='"',
                    comments=None,
                    skiprows=1 if header is not None else 0,
                    dtype=np.float64,
                    ndmin=2,
                )
        except (ValueError, Warning):
            pass  # a cell numpy cannot read, a short row, no rows: said precisely below
        else:
            if values.shape[0] > 0 and values.shape[1] == len(head):
                bad = np.argwhere(~(np.abs(values) <= MAX_VALUE))  # NaN, infinite, beyond float32
                if len(bad) == 0:
                    return header or [f"column {j + 1}" for j in range(len(head))], values.astype(np.float32)
    return _read_csv_cells(path, text)


def _numeric(cell: str) -> bool:
    """Whether the cell is written as a number (so a first row of numbers, NaN among them, is data, not a header)."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _csv_number(cell: str) -> float | None:
    """The cell's value, if it is a finite number float32 can hold."""
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if abs(value) <= MAX_VALUE else None


def _read_csv_cells(path: Path, text: str) -> tuple[list[str], Any]:
    import csv
    import io

    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row and any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise UnreadableFile(f"{shown(path.name)}: {exc}") from None
    if not rows:
        raise UnreadableFile(f"{shown(path.name)} holds no rows")
    width = len(rows[0])
    if width > MAX_CSV_COLUMNS:
        raise UnreadableFile(f"{shown(path.name)} has {width:,} columns, more than {MAX_CSV_COLUMNS:,}")

    header = None if all(_numeric(c) for c in rows[0]) else [printable(c.strip()) for c in rows[0]]
    body = rows[1:] if header is not None else rows
    values = np.empty((len(body), width), dtype=np.float32)
    for i, row in enumerate(body):
        if len(row) != width:
            raise UnreadableFile(
                f"{shown(path.name)}: row {i + 1 + (header is not None)} has {len(row)} values, not {width}"
            )
        for j, cell in enumerate(row):
            value = _csv_number(cell)
            if value is None:
                shown_cell = printable(cell[:12]) + ("…" if len(cell) > 12 else "")
                try:
                    finite = math.isfinite(float(cell))
                except ValueError:
                    finite = False
                cause = f"is beyond ±{MAX_VALUE:.3g}, float32's range" if finite else "is not a finite number"
                raise UnreadableFile(
                    f"{shown(path.name)}: row {i + 1 + (header is not None)}, column {j + 1}: {shown_cell!r} {cause}"
                )
            values[i, j] = value
    return header or [f"column {j + 1}" for j in range(width)], values


MAX_ONNX_BYTES = 2 * 2**30 - 1  # protobuf's own limit for one message; vgg16 is 528 MiB
ONNX_OPSETS = (7, 23)  # the default domain's opset versions Lumen reads (torch writes 17 to 20)


def read_onnx(path: str | Path, max_nodes: int, limit: int = MAX_ONNX_BYTES) -> Any:
    """An ONNX model (``onnx.ModelProto``) from a file Lumen did not write: a regular file of at most ``limit``
    bytes (``read_bytes``), parsed without loading external data; external tensors only in regular files inside
    the model's folder; the default domain's opset within ``ONNX_OPSETS`` and no other domain; at most
    ``max_nodes`` nodes, no subgraphs (If, Loop, Scan); then ``onnx.checker``. Each refusal is one DataError
    naming the file and the field or op at fault."""
    import onnx
    from onnx import external_data_helper

    path = Path(path)
    name = shown(path.name)
    data = read_bytes(path, limit, "model file")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise UnreadableFile(f"{name} is not an ONNX model ({type(exc).__name__})") from None
    del data
    if not model.HasField("graph"):
        raise UnreadableFile(f"{name} is not an ONNX model (no graph)")
    graph = model.graph
    domains = {(entry.domain or "ai.onnx"): entry.version for entry in model.opset_import}
    version = domains.pop("ai.onnx", None)
    if version is None:
        raise UnreadableFile(f"{name}: opset_import names no version of the default ONNX domain")
    if not ONNX_OPSETS[0] <= version <= ONNX_OPSETS[1]:
        raise UnreadableFile(f"{name}: opset {version} is outside the {ONNX_OPSETS[0]}–{ONNX_OPSETS[1]} Lumen reads")
    if len(graph.node) > max_nodes:
        raise UnreadableFile(f"{name}: the graph has {len(graph.node):,} nodes; Lumen reads at most {max_nodes:,}")
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise UnreadableFile(
                f"{name}: op {printable(node.op_type[:80])} is from the domain "
                f"{printable(node.domain[:80])}, which Lumen does not read"
            )
        for attribute in node.attribute:
            if attribute.g.ByteSize() or len(attribute.graphs):
                raise UnreadableFile(
                    f"{name}: op {printable(node.op_type[:80])} holds a subgraph "
                    f"({printable(attribute.name[:80])}); Lumen reads graphs without control flow"
                )
    folder = path.resolve().parent
    total = 0
    for tensor in external_data_helper._get_all_tensors(model):
        if not external_data_helper.uses_external_data(tensor):
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = info.get("location", "")
        target = (folder / location).resolve()
        if not location or Path(location).is_absolute() or not target.is_relative_to(folder):
            raise UnreadableFile(
                f"{name}: the tensor {printable(tensor.name[:80])} keeps its data outside the "
                f"model's folder ({printable(location[:160])})"
            )
        if not target.is_file():
            raise UnreadableFile(
                f"{name}: the tensor {printable(tensor.name[:80])}'s data file "
                f"{printable(location[:160])} is missing or not a regular file"
            )
        total += target.stat().st_size
        if total > limit:
            raise UnreadableFile(f"{name}: its external data is more than a model may be ({_size(limit)})")
    try:
        if total:
            external_data_helper.load_external_data_for_model(model, str(folder))
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UnreadableFile(f"{name} fails ONNX's checker: {printable(first[:300])}") from None
    return model


def parse_json(text: str) -> Any:
    """``json.loads`` with a depth limit, integers within int64 and finite numbers only."""
    if not text.strip():
        raise UnreadableFile("empty, not JSON (a file cut short?)")
    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        raise UnreadableFile(f"nested {depth} deep; at most {MAX_DEPTH} levels are read")
    try:
        return json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except json.JSONDecodeError as exc:
        raise UnreadableFile(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:  # cannot happen below MAX_DEPTH; kept so no recursion ever escapes as a traceback
        raise UnreadableFile(f"nested too deep; at most {MAX_DEPTH} levels are read") from None


# A string runs to its closing quote or, unterminated, to the end of the text: every match that starts succeeds,
# so the scan stays linear even for hostile text such as '"\\"\\"\\"…'.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)


def nesting_depth(text: str) -> int:
    """How deep the brackets of a JSON text nest (strings skipped), in linear time without recursion."""
    skeleton = _STRING.sub("", text).encode("utf-8", "replace")
    codes = np.frombuffer(skeleton, dtype=np.uint8)
    steps = ((codes == ord("[")) | (codes == ord("{"))).astype(np.int64)
    steps -= (codes == ord("]")) | (codes == ord("}"))
    if steps.size == 0:
        return 0
    return int(np.cumsum(steps).max(initial=0))


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        raise UnreadableFile(
            f"the number {digits[:12]}… has {len(digits.lstrip('-'))} digits; numbers must fit in 64 bits"
        )
    value = int(digits)
    if abs(value) > MAX_INT:
        raise UnreadableFile(f"the number {digits} does not fit in 64 bits")
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnreadableFile(f"the number {text[:12]}{'…' if len(text) > 12 else ''} is too large")
    return value


def _parse_constant(name: str) -> float:
    raise UnreadableFile(f"{name} is not a number JSON allows")


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError


def human_size(n: float) -> str:
    """Bytes in the largest binary unit below them: ``1.5 GiB``."""
    return _size(n)


# ---- text ----------------------------------------------------------------------------------------------------


def control_characters(text: str, allow: str = "") -> list[str]:
    """The control, format and separator characters in ``text`` (except those in ``allow``)."""
    return [c for c in text if c not in allow and (unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"))]


def shown(path: str | Path, limit: int = 160) -> str:
    """A path as a message shows it: printable, and shortened in the middle when very long."""
    text = printable(str(path))
    return text if len(text) <= limit else f"{text[: limit // 2]}…{text[-(limit // 2) :]}"


def printable(text: str) -> str:
    """``text`` with every control character written as an escape, so a terminal shows it and obeys none."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


# ---- writing -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed over ``path`` after an fsync if the block succeeds, removed if
    it fails. OS errors (a full disk, no permission) come out as one DataError naming ``path``."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        try:
            yield temp
            os.chmod(temp, new_file_mode())  # whatever mode the writer chose (safetensors: 0600), as any new file
            fsync_file(temp)
            os.replace(temp, path)
            fsync_dir(path.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
    except OSError as exc:
        raise DataError(f"cannot write {printable(str(path))}: {exc.strerror or exc}") from None
    except DataError as exc:  # a writer's own message names the temporary file: name the real one
        message = str(exc).replace(printable(str(temp)), printable(str(path)))
        raise type(exc)(message.replace(printable(temp.name), printable(path.name))) from None


@contextlib.contextmanager
def atomic_writes(paths: Sequence[str | Path]) -> Iterator[list[Path]]:
    """``atomic_write`` for files that belong together (an image and its arrays): a temporary name beside each;
    they are renamed into place only when the block ends without an error, so a failed write (a full disk)
    leaves none of the new files. Check the paths first (``check_writable``) to refuse before any work."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(atomic_write(path)) for path in paths]


def check_writable(path: str | Path, flag: str = "--out") -> Path:
    """Refuse, before any work is done, a file that cannot be written: a folder (``flag`` names the option that
    gave it), one whose folder is missing or is a file, one in a folder without write permission or on a
    read-only disk."""
    path = Path(path)
    name = printable(str(path))
    if path.is_dir():
        raise DataError(f"{name} is a folder; {flag} names the file to write")
    folder = path.parent
    if not folder.is_dir():
        cause = "is a file, not a folder" if folder.exists() else "does not exist"
        raise DataError(f"cannot write {name}: {printable(str(folder))} {cause}")
    try:  # the real test (permissions say little to root, nothing about a read-only disk)
        handle, probe = tempfile.mkstemp(prefix=".lumen-check-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise DataError(f"cannot write {name}: {exc.strerror or exc}") from None
    return path


def new_file_mode() -> int:
    """The permissions a new file gets here: 0666 less the umask (0644 with the usual 022)."""
    umask = None
    with contextlib.suppress(OSError, ValueError):  # Linux says it without changing it
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
    if umask is None:
        umask = os.umask(0o022)  # elsewhere: read by setting it, and put back at once
        os.umask(umask)
    return 0o666 & ~umask


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_write(path) as temp, open(temp, "wb") as f:
        f.write(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def fsync_file(path: Path) -> None:
    """Flush a written file's contents to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (where the platform allows fsync on a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
