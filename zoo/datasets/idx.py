"""The IDX file format of MNIST and Fashion-MNIST, read into numpy arrays.

An IDX file is a header and the values, row-major (LeCun et al., "The MNIST
database"): two zero bytes, one byte naming the type of the values (0x08
unsigned byte, ...), one byte giving the number of dimensions d, then d
sizes as big-endian 32-bit unsigned integers, then the values (big-endian).
``train-images-idx3-ubyte`` is ``00 00 08 03``, 60000, 28, 28 and 47,040,000
pixels; ``train-labels-idx1-ubyte`` is ``00 00 08 01``, 60000 and the labels.
"""

from __future__ import annotations

import struct

import numpy as np

#: The type byte of the header → the values' dtype (big-endian, as stored).
IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class IdxFormatError(ValueError):
    """Bytes that are not a well-formed IDX file."""


def parse_idx(data: bytes, name: str = "the file") -> np.ndarray:
    """The array an IDX file holds (``data``: its decompressed bytes).

    Raises :class:`IdxFormatError`, naming ``name``, when the magic number is
    wrong or the file is shorter or longer than its header says.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise IdxFormatError(
            f"{name} is not an IDX file: it starts with {data[:4].hex() or 'nothing'}, expected "
            f"00 00, a type byte ({', '.join(f'{code:02x}' for code in IDX_TYPES)}) and the rank")
    dtype, rank = IDX_TYPES[data[2]], data[3]
    header = 4 + 4 * rank
    if len(data) < header:
        raise IdxFormatError(f"{name} is truncated: its header needs {header} bytes, it has {len(data)}")
    shape = struct.unpack(f">{rank}I", data[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "longer than its header says"
        raise IdxFormatError(f"{name} is {state}: a {'x'.join(map(str, shape))} IDX array "
                             f"takes {expected} bytes, it has {len(data)}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape)
