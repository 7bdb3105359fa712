//! Tests of the NPY parser and writer.
use super::*;

fn header_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn encoded_arrays_parse_back_exactly() {
    let data = [1.5, -2.0, f64::MIN_POSITIVE, 1e300, 0.1, 7.0];
    for shape in [vec![6], vec![2, 3], vec![1, 2, 3]] {
        let bytes = encode_npy(&shape, &data).unwrap();
        assert_eq!((bytes.len() - data.len() * 8) % 64, 0);
        let back = parse_npy(&bytes).unwrap();
        assert_eq!(back.shape, shape);
        assert_eq!(back.data, data);
        assert_eq!(back.dtype, NpyDtype::F64);
    }
}

#[test]
fn values_that_would_not_fit_in_memory_as_f64_are_an_error() {
    // 1000 int8 values take 8000 bytes as f64; Fortran order twice that.
    let bytes = header_bytes(
        "{'descr': '|i1', 'fortran_order': False, 'shape': (1000,), }\n",
        &[1u8; 1000],
    );
    let err = parse_npy_within(&bytes, Some(7999)).unwrap_err();
    assert!(
        matches!(
            err,
            NpyError::TooLarge {
                count: 1000,
                needed: 8000,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("more than the 7999 bytes"),
        "{err}"
    );
    assert_eq!(
        parse_npy_within(&bytes, Some(8000)).unwrap().data.len(),
        1000
    );
    let fortran = header_bytes(
        "{'descr': '|i1', 'fortran_order': True, 'shape': (10, 100), }\n",
        &[1u8; 1000],
    );
    assert!(parse_npy_within(&fortran, Some(8000)).is_err());
    assert!(parse_npy_within(&fortran, Some(16000)).is_ok());
}

#[test]
fn big_endian_float32_is_decoded() {
    let values = [1.25f32, -3.5];
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    let bytes = header_bytes(
        "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n",
        &data,
    );
    assert_eq!(parse_npy(&bytes).unwrap().data, vec![1.25, -3.5]);
}

#[test]
fn fortran_order_is_reordered_to_c_order() {
    // The 2×3 matrix [[0, 1, 2], [3, 4, 5]] stored column by column.
    let column_major = [0.0f64, 3.0, 1.0, 4.0, 2.0, 5.0];
    let data: Vec<u8> = column_major.iter().flat_map(|v| v.to_le_bytes()).collect();
    let bytes = header_bytes(
        "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
        &data,
    );
    assert_eq!(
        parse_npy(&bytes).unwrap().data,
        vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    );
}

#[test]
fn integer_labels_are_read_as_floats() {
    let data: Vec<u8> = [3i64, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
    let bytes = header_bytes(
        "{'descr': '<i8', 'fortran_order': False, 'shape': (2,)}",
        &data,
    );
    let array = parse_npy(&bytes).unwrap();
    assert_eq!((array.dtype, array.data), (NpyDtype::I64, vec![3.0, -1.0]));
}

#[test]
fn each_malformation_has_its_own_message() {
    let ok = encode_npy(&[2], &[1.0, 2.0]).unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "empty input"),
        (b"\x93NUM".to_vec(), "shorter than the magic string"),
        (b"PK\x03\x04rest".to_vec(), "magic string"),
        (ok[..7].to_vec(), "version bytes are missing"),
        ([&MAGIC[..], &[9, 0]].concat(), "version 9.0"),
        (ok[..9].to_vec(), "header length is missing"),
        (ok[..40].to_vec(), "the header length says"),
        (ok[..ok.len() - 3].to_vec(), "data size mismatch"),
        ([&ok[..], &[0]].concat(), "data size mismatch"),
        (header_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", &[]), "unsupported dtype \"|O\""),
        (header_bytes("{'descr': '<c16', 'fortran_order': False, 'shape': (2,), }", &[]), "unsupported dtype"),
        (header_bytes("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,), }", &[]), "unsupported dtype"),
        // A multi-byte character where the type code starts (found by the proptest).
        (header_bytes("{'descr': 'ǩ8', 'fortran_order': False, 'shape': (2,), }", &[]), "unsupported dtype"),
        (header_bytes("{'descr': '<f8', 'shape': (2,), }", &[]), "'fortran_order' is missing"),
        (header_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 'y'}", &[]), "unexpected key 'x'"),
        (header_bytes("{'descr': '<f8', 'fortran_order': 1, 'shape': (2,)}", &[]), "unreadable value"),
        (header_bytes("[1, 2]", &[]), "not a dictionary"),
        (header_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,)} x", &[]), "after the closing"),
        (header_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,)}", &[]), "unreadable value"),
        (header_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296)}", &[]), "more than usize::MAX"),
    ];
    for (bytes, expected) in cases {
        let msg = parse_npy(&bytes).unwrap_err().to_string();
        assert!(msg.contains(expected), "expected {expected:?} in {msg:?}");
    }
}
