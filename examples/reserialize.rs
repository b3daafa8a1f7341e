//! Parse a protected file and print its canonical serialization.
fn main() {
    let path = std::env::args().nth(1).expect("usage: reserialize FILE");
    let bytes = std::fs::read(&path).expect("readable file");
    match pprotect::ProtectedFile::from_bytes(&bytes) {
        Ok(f) => print!("{}", f.to_yaml_string()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
