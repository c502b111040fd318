//! The login file `mysql_config_editor` writes (`~/.mylogin.cnf`): option-file text, each line
//! obfuscated. Its layout, as MySQL's mysys/my_default.cc reads it (`mysql_file_getline`) and
//! client/mysql_config_editor.cc writes it: 4 unused bytes, a 20-byte key, then per line a
//! 4-byte little-endian length and that many bytes of AES-128-ECB ciphertext (PKCS#7 padding)
//! of the line. The AES key is the 20 bytes folded into 16 by XOR (`my_aes_create_key`).
//! Obfuscation, not protection: the key is in the file, so the file's mode is what guards it.

use aes::Aes128;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, KeyInit};

const UNUSED: usize = 4;
const KEY_LEN: usize = 20;
const BLOCK: usize = 16;
/// The longest line the client reads (its line buffer is 4096 bytes).
const MAX_CIPHER_LEN: usize = 4096;

fn cipher(key: &[u8]) -> Aes128 {
    let mut rkey = [0u8; BLOCK];
    for (i, b) in key.iter().enumerate() {
        rkey[i % BLOCK] ^= b;
    }
    Aes128::new(GenericArray::from_slice(&rkey))
}

/// The file's text, or why it is not a login file (in words, for a one-line message).
pub fn decrypt(bytes: &[u8]) -> Result<String, String> {
    if bytes.len() < UNUSED + KEY_LEN {
        return Err(format!(
            "it is {} bytes long, shorter than the {}-byte header",
            bytes.len(),
            UNUSED + KEY_LEN
        ));
    }
    let aes = cipher(&bytes[UNUSED..UNUSED + KEY_LEN]);
    let mut rest = &bytes[UNUSED + KEY_LEN..];
    let mut text = Vec::new();
    let mut line = 0;
    while !rest.is_empty() {
        line += 1;
        let Some((len, body)) = rest.split_first_chunk::<4>() else {
            return Err(format!("line {line} is cut short"));
        };
        let len = i32::from_le_bytes(*len);
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n > 0 && n % BLOCK == 0 && n <= MAX_CIPHER_LEN && n <= body.len())
            .ok_or_else(|| format!("line {line} has an impossible length ({len} bytes)"))?;
        let mut plain = body[..len].to_vec();
        for block in plain.chunks_exact_mut(BLOCK) {
            aes.decrypt_block(GenericArray::from_mut_slice(block));
        }
        let pad = usize::from(*plain.last().unwrap_or(&0));
        if pad == 0 || pad > BLOCK || !plain[len - pad..].iter().all(|&b| usize::from(b) == pad) {
            return Err(format!("line {line} does not decrypt"));
        }
        plain.truncate(len - pad);
        text.extend_from_slice(&plain);
        rest = &body[len..];
    }
    String::from_utf8(text).map_err(|_| "its text is not UTF-8".to_string())
}

/// The file `mysql_config_editor` would write for `text` with `key`: test fixtures only, the
/// real-server test uses a file the real tool wrote.
#[cfg(test)]
pub fn encrypt(text: &str, key: [u8; KEY_LEN]) -> Vec<u8> {
    use aes::cipher::BlockEncrypt;
    let aes = cipher(&key);
    let mut out = vec![0u8; UNUSED];
    out.extend_from_slice(&key);
    for line in text.split_inclusive('\n') {
        let mut plain = line.as_bytes().to_vec();
        let pad = BLOCK - plain.len() % BLOCK;
        plain.extend(std::iter::repeat_n(pad as u8, pad));
        for block in plain.chunks_exact_mut(BLOCK) {
            aes.encrypt_block(GenericArray::from_mut_slice(block));
        }
        out.extend_from_slice(&(plain.len() as i32).to_le_bytes());
        out.extend_from_slice(&plain);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_known_vector() {
        let text = "[client]\nuser = \"root\"\npassword = \"p@ss:w/rd#%\"\n[db2]\nhost = \"127.0.0.1\"\nport = 3307\n";
        let file = encrypt(text, *b"0123456789abcdefghij");
        assert_eq!(decrypt(&file).unwrap(), text);
        // The key fold, checked against the FIPS-197 AES-128 vector: a 20-byte key whose last
        // 4 bytes are zero folds to its first 16 bytes.
        let mut key = [0u8; KEY_LEN];
        key[..16].copy_from_slice(&[
            0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
            0x0e, 0x0f,
        ]);
        let mut block = *GenericArray::from_slice(&[
            0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4,
            0xc5, 0x5a,
        ]);
        cipher(&key).decrypt_block(&mut block);
        assert_eq!(
            block.as_slice(),
            &[
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff
            ]
        );
    }

    #[test]
    fn corrupt_files_are_named_in_words() {
        let good = encrypt("[client]\nuser = \"root\"\n", [9; KEY_LEN]);
        assert!(decrypt(&good[..10]).unwrap_err().contains("header"));
        assert!(
            decrypt(&good[..good.len() - 3])
                .unwrap_err()
                .contains("impossible length")
        );
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x55;
        assert!(decrypt(&flipped).unwrap_err().contains("does not decrypt"));
        let mut other_key = good;
        other_key[UNUSED] ^= 1;
        assert!(decrypt(&other_key).is_err());
    }
}
