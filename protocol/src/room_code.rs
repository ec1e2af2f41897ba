//! The shape of a room code (`K7Q2XM`): the server draws codes from this
//! alphabet, and clients may check a typed code before asking for it.

use rand::Rng;

/// No 0/O, 1/I/L, so codes survive being read aloud.
pub const ROOM_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// The default length: 31^6 ≈ 8.9e8 codes (29.7 bits).
pub const ROOM_CODE_LEN: usize = 6;
/// The longest a server may be told to draw (`--room-code-length`):
/// 31^16 ≈ 7.3e23 (79 bits), past any sweep.
pub const MAX_ROOM_CODE_LEN: usize = 16;

/// Whether `code` could be a room code of any length a server may draw
/// (cheap check before touching a store).
pub fn is_room_code(code: &str) -> bool {
    (ROOM_CODE_LEN..=MAX_ROOM_CODE_LEN).contains(&code.len())
        && code.bytes().all(|b| ROOM_ALPHABET.contains(&b))
}

/// A random room code of `len` characters; the server's come from a
/// CSPRNG, so they cannot be guessed from one another.
pub fn random_room_code(rng: &mut impl Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(ROOM_ALPHABET[rng.random_range(0..ROOM_ALPHABET.len())]))
        .collect()
}
