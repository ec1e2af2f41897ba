//! Identifiers handed to clients: room codes, session tokens and player ids.
//!
//! All come from the thread-local CSPRNG (`rand::rng()`, ChaCha seeded from the
//! OS), so none can be guessed from another; uniqueness of room codes across
//! replicas is enforced by the store (`SET NX`), not by this module.

use rand::Rng;
pub use tierlab_protocol::room_code::is_room_code;

/// A fresh random room code of `len` characters, e.g. `K7Q2XM`.
pub fn room_code(len: usize) -> String {
    tierlab_protocol::room_code::random_room_code(&mut rand::rng(), len)
}

/// A 128-bit session token as 32 lowercase hex digits.
pub fn session_token() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

/// Whether `token` has the shape of a session token.
pub fn is_session_token(token: &str) -> bool {
    token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A 64-bit player id as 16 hex digits: unique within a room with
/// overwhelming probability, and not secret (every member sees it).
pub fn player_id() -> String {
    format!("{:016x}", rand::rng().random::<u64>())
}

/// A short random suffix for default replica names.
pub fn short_suffix() -> String {
    format!("{:06x}", rand::rng().random::<u32>() & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn room_codes_use_only_the_unambiguous_alphabet() {
        for _ in 0..1000 {
            let code = room_code(6);
            assert!(is_room_code(&code), "{code}");
            assert!(is_room_code(&room_code(16)));
            assert!(!code.contains(['0', 'O', '1', 'I', 'L']));
        }
    }

    #[test]
    fn room_codes_spread_over_the_space() {
        let codes: HashSet<String> = (0..10_000).map(|_| room_code(6)).collect();
        // 31^6 ≈ 8.9e8 codes: 10k draws collide with probability ≈ 5 %; allow a couple.
        assert!(codes.len() >= 9_998, "{} distinct", codes.len());
    }

    #[test]
    fn tokens_are_128_bit_hex() {
        let t = session_token();
        assert!(is_session_token(&t));
        assert_ne!(t, session_token());
        assert!(!is_session_token("xyz"));
        assert!(!is_room_code("K7Q2X"));
        assert!(!is_room_code("K7Q2XMK7Q2XMK7Q2X"));
        assert!(!is_room_code("k7q2xm"));
    }
}
