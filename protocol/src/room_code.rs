//! The shape of a room code (`K7Q2XM`): the server draws codes from this
//! alphabet, and clients may check a typed code before asking for it.

use rand::Rng;

/// No 0/O, 1/I/L, so codes survive being read aloud.
pub const ROOM_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
pub const ROOM_CODE_LEN: usize = 6;

/// Whether `code` could be a room code (cheap check before touching a store).
pub fn is_room_code(code: &str) -> bool {
    code.len() == ROOM_CODE_LEN && code.bytes().all(|b| ROOM_ALPHABET.contains(&b))
}

/// A random room code; the server's come from a CSPRNG, so they cannot be
/// guessed from one another.
pub fn random_room_code(rng: &mut impl Rng) -> String {
    (0..ROOM_CODE_LEN)
        .map(|_| char::from(ROOM_ALPHABET[rng.random_range(0..ROOM_ALPHABET.len())]))
        .collect()
}
