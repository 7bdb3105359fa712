//! NPY: a small, defensive parser and writer for NumPy's `.npy` array format.
//!
//! The parser accepts format versions 1.0, 2.0 and 3.0, little- and big-endian `float32`,
//! `float64` and integer element types, C and Fortran order, and returns the values as `f64`
//! in C (row-major) order. It never panics and never allocates more than the input implies:
//! the header is parsed by a tiny literal parser (not an evaluator), every size is computed
//! with overflow checks, and the data length must match the shape exactly.

mod header;

use header::parse_header;

/// The magic string that starts every `.npy` file.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Element type of an NPY array as stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyDtype {
    /// IEEE-754 single precision (`f4`).
    F32,
    /// IEEE-754 double precision (`f8`).
    F64,
    /// Signed 8-bit integer (`i1`).
    I8,
    /// Signed 16-bit integer (`i2`).
    I16,
    /// Signed 32-bit integer (`i4`).
    I32,
    /// Signed 64-bit integer (`i8`).
    I64,
    /// Unsigned 8-bit integer (`u1`).
    U8,
    /// Unsigned 16-bit integer (`u2`).
    U16,
    /// Unsigned 32-bit integer (`u4`).
    U32,
    /// Unsigned 64-bit integer (`u8`).
    U64,
}

impl NpyDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::I8 | Self::U8 => 1,
            Self::I16 | Self::U16 => 2,
            Self::F32 | Self::I32 | Self::U32 => 4,
            Self::F64 | Self::I64 | Self::U64 => 8,
        }
    }

    /// Whether this is `float32` or `float64`.
    pub fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F64)
    }

    /// The dtype of a code such as `f8` (without the byte-order character).
    fn from_code(code: &[u8]) -> Option<Self> {
        Some(match code {
            b"f4" => Self::F32,
            b"f8" => Self::F64,
            b"i1" => Self::I8,
            b"i2" => Self::I16,
            b"i4" => Self::I32,
            b"i8" => Self::I64,
            b"u1" => Self::U8,
            b"u2" => Self::U16,
            b"u4" => Self::U32,
            b"u8" => Self::U64,
            _ => return None,
        })
    }
}

/// A parsed NPY array: its shape and its values as `f64` in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Dimensions; empty for a 0-d (scalar) array.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values, row-major. Integers are converted to `f64` (exact up to
    /// 2^53).
    pub data: Vec<f64>,
    /// The element type as stored in the file.
    pub dtype: NpyDtype,
    /// The dtype string of the header, e.g. `<f8`.
    pub descr: String,
}

/// Why bytes are not a supported NPY array. Each variant has its own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NpyError {
    /// No bytes at all.
    #[error("empty input: an NPY file starts with the magic string \\x93NUMPY")]
    Empty,
    /// The input ends before the magic string, the version or the header is complete.
    #[error("truncated NPY: {0}")]
    Truncated(String),
    /// The first six bytes are not `\x93NUMPY`.
    #[error("not an NPY file: the magic string \\x93NUMPY is missing")]
    BadMagic,
    /// A format version other than 1.0, 2.0 or 3.0.
    #[error("unsupported NPY format version {major}.{minor} (1.0, 2.0 and 3.0 are supported)")]
    Version {
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The header dictionary cannot be parsed or lacks a key.
    #[error("malformed NPY header: {0}")]
    Header(String),
    /// A dtype other than little/big-endian float or integer (e.g. object arrays, which is
    /// how NumPy stores ragged arrays, strings, complex, float16, structured types).
    #[error(
        "unsupported dtype {0:?}: only little- or big-endian float32/float64 \
         ('<f4', '>f4', '<f8', '>f8') and integer arrays are supported"
    )]
    Dtype(String),
    /// The number of data bytes differs from what the shape and dtype require.
    #[error("data size mismatch: shape {shape:?} of dtype {descr:?} needs {expected} bytes, found {found}")]
    Size {
        /// Declared shape.
        shape: Vec<usize>,
        /// Declared dtype.
        descr: String,
        /// Bytes the shape needs (`None` if the count overflows).
        expected: String,
        /// Bytes present after the header.
        found: usize,
    },
    /// The values, widened to `f64`, would not fit in the memory available.
    #[error("shape {shape:?} has {count} values, which need {needed} bytes as f64, more than the {available} bytes of memory available")]
    TooLarge {
        /// Declared shape.
        shape: Vec<usize>,
        /// Number of values.
        count: usize,
        /// Bytes the `f64` values need (twice that for Fortran order, which is transposed).
        needed: u64,
        /// Bytes available.
        available: u64,
    },
}

/// Parses the bytes of a `.npy` file.
///
/// # Errors
/// An [`NpyError`] for empty or truncated input, a bad magic string or version, a malformed
/// header, an unsupported dtype (object, string, complex, float16, structured), a data size
/// that does not match the shape, or values that would not fit in memory as `f64`
/// ([`NpyError::TooLarge`]; an `int8` array takes 8 times its size).
pub fn parse_npy(bytes: &[u8]) -> std::result::Result<NpyArray, NpyError> {
    parse_npy_within(bytes, wlm_numeric::available_memory_bytes())
}

/// [`parse_npy`] with the `f64` values limited to `limit` bytes (`None`: no limit).
fn parse_npy_within(bytes: &[u8], limit: Option<u64>) -> std::result::Result<NpyArray, NpyError> {
    if bytes.is_empty() {
        return Err(NpyError::Empty);
    }
    if bytes.len() < MAGIC.len() {
        if MAGIC.starts_with(bytes) {
            return Err(NpyError::Truncated(format!(
                "{} bytes, shorter than the magic string",
                bytes.len()
            )));
        }
        return Err(NpyError::BadMagic);
    }
    if &bytes[..6] != MAGIC {
        return Err(NpyError::BadMagic);
    }
    if bytes.len() < 8 {
        return Err(NpyError::Truncated("the version bytes are missing".into()));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_start, header_len) = match (major, minor) {
        (1, 0) => {
            let len = bytes
                .get(8..10)
                .ok_or_else(|| NpyError::Truncated("the 2-byte header length is missing".into()))?;
            (10usize, u16::from_le_bytes([len[0], len[1]]) as usize)
        }
        (2, 0) | (3, 0) => {
            let len = bytes
                .get(8..12)
                .ok_or_else(|| NpyError::Truncated("the 4-byte header length is missing".into()))?;
            (
                12usize,
                u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize,
            )
        }
        _ => return Err(NpyError::Version { major, minor }),
    };
    let header_end = header_start
        .checked_add(header_len)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| {
            NpyError::Truncated(format!(
                "the header length says {header_len} bytes but only {} follow",
                bytes.len() - header_start
            ))
        })?;
    let header = std::str::from_utf8(&bytes[header_start..header_end])
        .map_err(|_| NpyError::Header("the header is not valid UTF-8 text".into()))?;
    let meta = parse_header(header)?;
    let dtype_err = || NpyError::Dtype(meta.descr.clone());
    let descr = meta.descr.as_bytes();
    let (order, code) = match descr.first() {
        Some(b'<' | b'>' | b'|' | b'=') => (descr[0], &descr[1..]),
        _ => (b'=', descr),
    };
    let dtype = NpyDtype::from_code(code).ok_or_else(dtype_err)?;
    let big_endian = match order {
        b'<' => false,
        b'>' => true,
        // `|` (not applicable) is only valid for one-byte types; `=` means the writer's native
        // order, which NumPy never writes for multi-byte types: read it as little-endian.
        b'|' if dtype.size() == 1 => false,
        b'|' => return Err(dtype_err()),
        _ => cfg!(target_endian = "big"),
    };
    let data_bytes = &bytes[header_end..];
    let count = meta
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let expected = count.and_then(|c| c.checked_mul(dtype.size()));
    if expected != Some(data_bytes.len()) {
        return Err(NpyError::Size {
            shape: meta.shape.clone(),
            descr: meta.descr.clone(),
            expected: expected.map_or_else(|| "more than usize::MAX".into(), |e| e.to_string()),
            found: data_bytes.len(),
        });
    }
    let count = count.unwrap_or(0);
    let copies = if meta.fortran_order && meta.shape.len() > 1 {
        2
    } else {
        1
    };
    let needed = (count as u64).saturating_mul(8 * copies);
    if let Some(available) = limit.filter(|&a| needed > a) {
        return Err(NpyError::TooLarge {
            shape: meta.shape.clone(),
            count,
            needed,
            available,
        });
    }
    let values: Vec<f64> = data_bytes
        .chunks_exact(dtype.size())
        .map(|c| decode(c, dtype, big_endian))
        .collect();
    let data = if meta.fortran_order && meta.shape.len() > 1 {
        fortran_to_c(&values, &meta.shape)
    } else {
        values
    };
    Ok(NpyArray {
        shape: meta.shape,
        data,
        dtype,
        descr: meta.descr,
    })
}

fn decode(c: &[u8], dtype: NpyDtype, big_endian: bool) -> f64 {
    macro_rules! num {
        ($t:ty, $n:expr) => {{
            let mut b = [0u8; $n];
            b.copy_from_slice(c);
            if big_endian {
                <$t>::from_be_bytes(b)
            } else {
                <$t>::from_le_bytes(b)
            }
        }};
    }
    match dtype {
        NpyDtype::F32 => f64::from(num!(f32, 4)),
        NpyDtype::F64 => num!(f64, 8),
        NpyDtype::I8 => f64::from(num!(i8, 1)),
        NpyDtype::I16 => f64::from(num!(i16, 2)),
        NpyDtype::I32 => f64::from(num!(i32, 4)),
        NpyDtype::I64 => num!(i64, 8) as f64,
        NpyDtype::U8 => f64::from(num!(u8, 1)),
        NpyDtype::U16 => f64::from(num!(u16, 2)),
        NpyDtype::U32 => f64::from(num!(u32, 4)),
        NpyDtype::U64 => num!(u64, 8) as f64,
    }
}

/// Reorders column-major values into row-major order.
fn fortran_to_c(values: &[f64], shape: &[usize]) -> Vec<f64> {
    let rank = shape.len();
    let mut c_strides = vec![1usize; rank];
    for k in (0..rank.saturating_sub(1)).rev() {
        c_strides[k] = c_strides[k + 1] * shape[k + 1];
    }
    let mut out = vec![0.0; values.len()];
    let mut index = vec![0usize; rank];
    for &v in values {
        let c: usize = index.iter().zip(&c_strides).map(|(i, s)| i * s).sum();
        out[c] = v;
        // Fortran order: the first index varies fastest.
        for k in 0..rank {
            index[k] += 1;
            if index[k] < shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}

/// Encodes an array as a version 1.0 `.npy` file of little-endian `float64` in C order (the
/// header padded to a multiple of 64 bytes, as NumPy writes it).
///
/// # Errors
/// [`NpyError::Size`] if `data.len()` is not the product of `shape`.
pub fn encode_npy(shape: &[usize], data: &[f64]) -> std::result::Result<Vec<u8>, NpyError> {
    let count = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if count != Some(data.len()) {
        return Err(NpyError::Size {
            shape: shape.to_vec(),
            descr: "<f8".into(),
            expected: count.map_or_else(|| "more than usize::MAX".into(), |c| (c * 8).to_string()),
            found: data.len() * 8,
        });
    }
    let dims = match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {dims}, }}");
    let (version, prefix) = if header.len() + 11 <= usize::from(u16::MAX) {
        (1u8, 10)
    } else {
        (2, 12)
    };
    let total = (prefix + header.len() + 1).div_ceil(64) * 64;
    header.push_str(&" ".repeat(total - prefix - header.len() - 1));
    header.push('\n');
    let mut out = Vec::with_capacity(total + data.len() * 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
