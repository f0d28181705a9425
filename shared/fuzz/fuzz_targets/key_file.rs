//! A key file's text: parsing never panics, nor does unlocking a plaintext one (encrypted ones
//! are unlocked only with the cheapest scrypt settings, to keep executions fast).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(file) = doin_crypto::keystore::KeyFile::parse(text) {
        if !file.is_encrypted() {
            let _ = file.unlock(None);
        }
    }
});
