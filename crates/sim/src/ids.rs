//! Salesforce record Ids: a 3-character key prefix, a 2-character pod, a 10-character base-62
//! counter, and the 3-character checksum that makes the 18-character form case-insensitive.

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const CHECKSUM_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// The pod part of every Id the simulator mints (a real org has one per instance).
pub const POD: &str = "5g";

/// The 18-character Id of the `counter`-th record with this key prefix.
pub fn record_id(key_prefix: &str, counter: u64) -> String {
    let mut id = String::with_capacity(18);
    id.push_str(key_prefix);
    id.push_str(POD);
    let mut digits = [b'0'; 10];
    let mut n = counter;
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(n % 62) as usize];
        n /= 62;
    }
    id.extend(digits.iter().map(|&b| b as char));
    let checksum = checksum(&id);
    id.push_str(&checksum);
    id
}

/// The 3-character suffix of a 15-character Id: for each chunk of 5, a bit per upper-case
/// letter, mapped onto A-Z0-5.
pub fn checksum(id15: &str) -> String {
    id15.as_bytes()
        .chunks(5)
        .take(3)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, b)| b.is_ascii_uppercase())
                .fold(0usize, |acc, (i, _)| acc | (1 << i));
            CHECKSUM_ALPHABET[bits] as char
        })
        .collect()
}

/// The canonical 18-character form of a 15- or 18-character Id, if it is one. An 18-character
/// Id may arrive in any case: its checksum says which letters of the first 15 are upper case.
pub fn normalize(id: &str) -> Option<String> {
    if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match id.len() {
        15 => Some(format!("{id}{}", checksum(id))),
        18 => {
            let mut restored = String::with_capacity(18);
            for (chunk, suffix) in id.as_bytes()[..15].chunks(5).zip(id[15..].bytes()) {
                let bits = CHECKSUM_ALPHABET
                    .iter()
                    .position(|&c| c == suffix.to_ascii_uppercase())?;
                for (i, &b) in chunk.iter().enumerate() {
                    let upper = bits & (1 << i) != 0;
                    if upper && !b.is_ascii_alphabetic() {
                        return None;
                    }
                    restored.push(if upper {
                        b.to_ascii_uppercase()
                    } else {
                        b.to_ascii_lowercase()
                    } as char);
                }
            }
            let checksum = checksum(&restored);
            restored.push_str(&checksum);
            Some(restored)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_salesforce_examples() {
        // Ids published in Salesforce's documentation.
        assert_eq!(
            normalize("001D000000IRFma").as_deref(),
            Some("001D000000IRFmaIAH")
        );
        assert_eq!(
            normalize("005R0000000UyrW").as_deref(),
            Some("005R0000000UyrWIAS")
        );
        assert_eq!(
            normalize("001d000000irfmaiah").as_deref(),
            Some("001D000000IRFmaIAH")
        );
        assert_eq!(
            normalize("001D000000IRFmaIAH").as_deref(),
            Some("001D000000IRFmaIAH")
        );
        assert_eq!(normalize("0019000000IRFma999"), None);
        assert_eq!(normalize("not-an-id"), None);
    }

    #[test]
    fn minted_ids_are_valid_and_ordered_by_counter() {
        let a = record_id("001", 1);
        let b = record_id("001", 62);
        assert_eq!(a.len(), 18);
        assert!(a.starts_with("0015g"));
        assert_eq!(normalize(&a).as_deref(), Some(a.as_str()));
        assert!(a[..15] < b[..15]);
    }
}
