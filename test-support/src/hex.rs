//! Octets from hex text, as protocol references and captures print them.

/// The octets of `text`: pairs of hex digits, white space anywhere ignored. Panics (a test
/// fixture is wrong) on an odd number of digits or a character that is not a hex digit.
pub fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(
        digits.len().is_multiple_of(2),
        "odd number of hex digits in {text:?}"
    );
    digits
        .chunks(2)
        .map(|pair| {
            let pair = String::from_utf8_lossy(pair);
            u8::from_str_radix(&pair, 16).unwrap_or_else(|_| panic!("not hex: {pair:?}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::hex;

    #[test]
    fn pairs_of_digits_with_white_space_anywhere() {
        assert_eq!(hex("00 ff\n1A 2b 3c"), vec![0x00, 0xff, 0x1a, 0x2b, 0x3c]);
        assert_eq!(hex(""), Vec::<u8>::new());
    }

    #[test]
    #[should_panic(expected = "odd number")]
    fn an_odd_number_of_digits_is_a_broken_fixture() {
        hex("abc");
    }
}
