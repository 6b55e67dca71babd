"""The IDX file format of MNIST, Fashion-MNIST and KMNIST, raw or gzip-compressed.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number
of dimensions), one big-endian 32-bit size per dimension, then the values in
C order, big-endian.  ``read_idx`` checks all of it, including that the file
holds exactly as many bytes as the header announces.
"""

import gzip
import os
import struct
import zlib

import numpy as np

TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path):
    """The array stored in the IDX file `path` (gzip or raw), in native byte order.

    Raises ValueError naming the file when the magic number, the type code,
    the dimensions or the length are wrong (a truncated download, say).
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        compressed = file.read(2) == GZIP_MAGIC
    try:
        with (gzip.open if compressed else open)(path, "rb") as file:
            data = file.read()
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{path} is not a readable gzip file (truncated or corrupt?): {error}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file: its magic number {data[:4].hex() or 'is missing'} does not start with two zero bytes")
    type_code, ndim = data[2], data[3]
    if type_code not in TYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{type_code:02x} (known: {', '.join(f'0x{c:02x}' for c in TYPES)})")
    if ndim == 0:
        raise ValueError(f"{path}: the IDX header announces 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path} is truncated inside its header ({len(data)} bytes, the header needs {header})")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = TYPES[type_code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{path} holds {len(data)} bytes but its header announces {expected} "
            f"(shape {shape} of {dtype.name}): the file is truncated or corrupt"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))
