//! Finnish personal identity code (henkilötunnus, HETU): format and check character.

const CHECK_CHARS: &[u8; 31] = b"0123456789ABCDEFHJKLMNPRSTUVWXY";

/// Validates `DDMMYYCZZZQ` (century sign `+`, `-`/`U`–`Y`, `A`–`F`) including the date and the
/// check character; returns the code in upper case.
pub fn validate(input: &str) -> Option<String> {
    let s = input.trim().to_ascii_uppercase();
    let b = s.as_bytes();
    if b.len() != 11 {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (dd, mm, yy) = (digits(0..2)?, digits(2..4)?, digits(4..6)?);
    let century = match b[6] {
        b'+' => 1800,
        b'-' | b'U' | b'V' | b'W' | b'X' | b'Y' => 1900,
        b'A' | b'B' | b'C' | b'D' | b'E' | b'F' => 2000,
        _ => return None,
    };
    let individual = digits(7..10)?;
    if individual < 2 {
        return None;
    }
    chrono::NaiveDate::from_ymd_opt(century + yy as i32, mm, dd)?;
    let number = dd * 10_000_000 + mm * 100_000 + yy * 1000 + individual;
    let expected = CHECK_CHARS[(number % 31) as usize];
    (b[10] == expected).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn valid_codes() {
        assert_eq!(validate("131052-308T").as_deref(), Some("131052-308T"));
        assert_eq!(validate("010101a123n").as_deref(), Some("010101A123N"));
    }

    #[test]
    fn invalid_codes() {
        assert!(validate("131052-308U").is_none(), "wrong check character");
        assert!(validate("310252-308T").is_none(), "no such date");
        assert!(validate("131052*308T").is_none(), "bad century sign");
        assert!(validate("131052-308").is_none());
        assert!(validate("1310ä2-308T").is_none());
    }
}
