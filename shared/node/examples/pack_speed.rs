//! Time of `at_rest::pack` and `unpack` on one file of Automerge bytes:
//! `cargo run --release -p loket-node --example pack_speed -- FILE`.
fn main() {
    let path = std::env::args().nth(1).expect("a file of Automerge bytes");
    let bytes = std::fs::read(path).expect("readable");
    let n = 10_000;
    let t = std::time::Instant::now();
    let mut packed = Vec::new();
    for _ in 0..n {
        packed = loket_node::at_rest::pack(&bytes);
    }
    let p = t.elapsed() / n;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let _ = loket_node::at_rest::unpack(packed.clone()).expect("unpacks");
    }
    println!("{} -> {} bytes; pack {:?}, unpack {:?}", bytes.len(), packed.len(), p, t.elapsed() / n);
}
