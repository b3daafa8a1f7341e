//! The parser's fast path (canonical files) against the full parser: on
//! every fixture, on random files our emitter writes and on random edits
//! of them, the two give the same answer, tree and lines included.

use std::path::Path;

use pprotect::codec::{Node, emit, parse_fast, parse_str, parse_str_full};
use proptest::prelude::*;

use crate::harness::fixtures;

fn same_answer(text: &str) {
    assert_eq!(
        parse_str(text),
        parse_str_full(text),
        "the fast path disagrees on {text:?}"
    );
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn every_fixture_reads_the_same_both_ways() {
    let mut files = Vec::new();
    walk(&fixtures(), &mut files);
    let mut fast = 0;
    for path in &files {
        let Ok(text) = std::str::from_utf8(&std::fs::read(path).unwrap()).map(str::to_owned) else {
            continue;
        };
        same_answer(&text);
        if parse_fast(&text).is_some() {
            fast += 1;
        }
    }
    assert!(fast > 10, "only {fast} fixtures took the fast path");
}

#[test]
fn files_the_tools_write_take_the_fast_path() {
    let mut files = Vec::new();
    for dir in ["pocket_protector-26.4.3", "pprotect-written", "example"] {
        walk(&fixtures().join(dir), &mut files);
    }
    let mut n = 0;
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy();
        if !name.ends_with(".yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if pprotect::ProtectedFile::from_bytes(text.as_bytes()).is_err() {
            continue;
        }
        n += 1;
        // Files with quoted or special-character entries may decline; the
        // plain ones must not.
        let special = text.contains('"') || !text.is_ascii();
        assert!(
            special || parse_fast(&text).is_some(),
            "{} declined the fast path",
            path.display()
        );
    }
    assert!(n > 3);
}

/// A tree of owned strings shaped like a protected file, emitted.
#[derive(Debug, Clone)]
enum Tree {
    Str(String),
    Map(Vec<(String, Tree)>),
    Seq(Vec<String>),
}

fn node(t: &Tree) -> Node<'_> {
    match t {
        Tree::Str(s) => Node::Str(s),
        Tree::Map(e) => Node::Map(e.iter().map(|(k, v)| (k.as_str(), node(v))).collect()),
        Tree::Seq(items) => Node::Seq(items.iter().map(String::as_str).collect()),
    }
}

/// Strings with what makes YAML hard: indicators, quotes, colons and
/// hashes, runs of spaces, non-ASCII, line breaks of every kind, words
/// that read as numbers or booleans, and long words that fold.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z0-9+/=]{1,120}",
        2 => "[a-z0-9 .:@_-]{0,40}",
        2 => prop::collection::vec(
            prop_oneof![
                Just("word".to_string()),
                Just("2026-11-28T10:06:19Z".to_string()),
                Just("--".to_string()),
                Just("a:b".to_string()),
                Just("k: v".to_string()),
                Just("#".to_string()),
                Just("x #y".to_string()),
                Just("'q'".to_string()),
                Just("\"d\"".to_string()),
                Just("caf\u{e9}".to_string()),
                Just("\u{1F600}".to_string()),
                Just("\u{a0}".to_string()),
                Just("\u{85}".to_string()),
                Just("\u{2028}".to_string()),
                Just("\u{2029}".to_string()),
                Just("\t".to_string()),
                Just("\n".to_string()),
                Just(String::new()),
                Just("123".to_string()),
                Just("true".to_string()),
                Just("- item".to_string()),
                Just("[x]".to_string()),
                Just("{}".to_string()),
                Just("&a".to_string()),
                Just("!t".to_string()),
                "[A-Za-z]{30,110}",
            ],
            0..12,
        )
        .prop_map(|w| w.join(" ")),
        1 => any::<String>(),
    ]
}

/// Strings as protected files hold them: base64, names, and log entries
/// (words, some long enough to fold, some reading as numbers).
fn benign() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[A-Za-z0-9+/]{20,120}={0,2}",
        2 => "[a-z][a-z0-9.@_-]{0,30}",
        2 => prop::collection::vec("[a-z0-9][a-z0-9.:@_()-]{0,30}", 1..14).prop_map(|w| w.join(" ")),
        1 => "[0-9]{1,4}",
    ]
    .boxed()
}

fn tree(key: BoxedStrategy<String>, text: BoxedStrategy<String>) -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        4 => text.clone().prop_map(Tree::Str),
        1 => prop::collection::vec(text.clone(), 0..6).prop_map(Tree::Seq),
    ];
    leaf.prop_recursive(4, 40, 6, move |inner| {
        prop::collection::vec((key.clone(), inner), 0..6).prop_map(Tree::Map)
    })
}

fn root_of(key: BoxedStrategy<String>, text: BoxedStrategy<String>) -> impl Strategy<Value = Tree> {
    prop::collection::vec((key.clone(), tree(key, text)), 1..6).prop_map(Tree::Map)
}

/// Names as keys (domains, secrets, custodians).
fn name() -> BoxedStrategy<String> {
    "[a-z][a-z0-9.@_-]{0,30}".boxed()
}

fn root() -> impl Strategy<Value = Tree> {
    prop_oneof![
        root_of(text().boxed(), text().boxed()),
        root_of(name(), benign())
    ]
}

/// An edit of a text: replace, insert or delete one character.
fn edit(text: &str, at: usize, what: u8, with: char) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return with.to_string();
    }
    let at = at % chars.len();
    match what % 3 {
        0 => chars[at] = with,
        1 => chars.insert(at, with),
        _ => {
            chars.remove(at);
        }
    }
    chars.into_iter().collect()
}

fn interesting_char() -> impl Strategy<Value = char> {
    prop_oneof![
        Just(' '),
        Just('\n'),
        Just(':'),
        Just('#'),
        Just('-'),
        Just('\''),
        Just('"'),
        Just('\t'),
        Just('\r'),
        Just('{'),
        Just('['),
        Just('&'),
        Just('*'),
        Just('!'),
        Just('|'),
        Just('>'),
        Just('<'),
        Just('='),
        Just('?'),
        Just('\u{85}'),
        Just('\u{2028}'),
        Just('\u{feff}'),
        Just('1'),
        Just('a'),
        any::<char>(),
    ]
}

fn cases() -> u32 {
    std::env::var("PPROTECT_CODEC_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000)
}

#[test]
fn emitted_files_read_the_same_both_ways() {
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config::with_cases(cases()));
    let fast = std::cell::Cell::new(0u32);
    runner
        .run(&root_of(name(), benign()), |t| {
            let text = emit(&node(&t));
            same_answer(&text);
            if parse_fast(&text).is_some() {
                fast.set(fast.get() + 1);
            } else if std::env::var("SHOWDECLINED").is_ok() && parse_str(&text).is_ok() {
                eprintln!("DECLINED {text:?}");
            }
            Ok(())
        })
        .unwrap();
    // What pprotect writes is canonical; a few shapes (duplicate keys,
    // keys of other types) are declined.
    assert!(
        fast.get() * 2 >= cases(),
        "only {} of {} emitted files took the fast path",
        fast.get(),
        cases()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn hostile_files_read_the_same_both_ways(t in root_of(text().boxed(), text().boxed())) {
        same_answer(&emit(&node(&t)));
    }

    #[test]
    fn edited_files_read_the_same_both_ways(
        t in root(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), interesting_char()), 1..4),
    ) {
        let mut text = emit(&node(&t));
        for (at, what, with) in edits {
            text = edit(&text, at, what, with);
        }
        same_answer(&text);
    }
}

// --- The block memo (check-audit-log's reader of many versions) -------

use pprotect::ProtectedFile;
use pprotect::model::BlockMemo;

/// `from_bytes_memo` answers exactly as `from_bytes` does: the same file,
/// or the same error.
#[track_caller]
fn same_through_memo(bytes: &[u8], memo: &BlockMemo) {
    let plain = ProtectedFile::from_bytes(bytes);
    let memoized = ProtectedFile::from_bytes_memo(bytes, memo);
    match (&plain, &memoized) {
        (Ok(a), Ok(b)) => assert_eq!(
            a,
            b,
            "different files from {:?}",
            String::from_utf8_lossy(bytes)
        ),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!(
            "from_bytes {plain:?} but from_bytes_memo {memoized:?} on {:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

#[test]
fn every_fixture_reads_the_same_through_the_block_memo() {
    let mut files = Vec::new();
    walk(&fixtures(), &mut files);
    // One memo for all of them, read twice: the second pass hits.
    let memo = BlockMemo::default();
    for _ in 0..2 {
        for path in &files {
            same_through_memo(&std::fs::read(path).unwrap(), &memo);
        }
    }
    assert!(memo.assembled() > 10, "only {} assembled", memo.assembled());
}

/// A file with a few domains, secrets and log entries (raw custodian: no
/// key derivation).
fn base_file() -> ProtectedFile {
    use pprotect::KeyType;
    use secrecy::SecretString;
    let pass = SecretString::from(format!("P{}P", "0123456789abcdef".repeat(4)));
    let mut f = ProtectedFile::create();
    f.add_key_custodian("a@example.com", &pass, KeyType::Raw)
        .unwrap();
    let who = f.unlock("a@example.com", &pass).unwrap().unwrap();
    for d in ["dev", "prod", "stage", "qa"] {
        f.add_domain(d, &who).unwrap();
        for s in ["db", "api-key", "token"] {
            f.add_secret(d, s, &SecretString::from(format!("{d}-{s}")))
                .unwrap();
        }
    }
    f
}

/// What happens to the file between two versions.
#[derive(Debug, Clone)]
enum Step {
    Update(usize, usize, u16),
    Add(usize, u16),
    Remove(usize, usize),
    Truncate(usize),
    /// A character edit of the version's text (as a hostile commit).
    Edit(usize, u8, char),
    /// A domain's block repeated at the end (a duplicate key).
    DuplicateBlock(usize),
    /// Two blocks swapped.
    SwapBlocks(usize, usize),
    /// A block dropped.
    DropBlock(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..4usize, 0..4usize, any::<u16>()).prop_map(|(d, s, v)| Step::Update(d, s, v)),
        1 => (0..4usize, any::<u16>()).prop_map(|(d, v)| Step::Add(d, v)),
        1 => (0..4usize, 0..3usize).prop_map(|(d, s)| Step::Remove(d, s)),
        1 => (0..8usize).prop_map(Step::Truncate),
        3 => (any::<usize>(), any::<u8>(), interesting_char()).prop_map(|(a, w, c)| Step::Edit(a, w, c)),
        1 => (0..8usize).prop_map(Step::DuplicateBlock),
        1 => (0..8usize, 0..8usize).prop_map(|(a, b)| Step::SwapBlocks(a, b)),
        1 => (0..8usize).prop_map(Step::DropBlock),
    ]
}

/// The text's top-level blocks (as the memo splits them).
fn blocks(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.split_inclusive('\n') {
        let top = !line.starts_with(' ') && !line.starts_with('-');
        match out.last_mut() {
            Some(last) if !top => last.push_str(line),
            _ => out.push(line.to_string()),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases() / 8))]

    /// Sequences of versions, as a history holds them, some edited by
    /// hand, read through one memo: every version reads exactly as
    /// `from_bytes` reads it.
    #[test]
    fn version_sequences_read_the_same_through_the_block_memo(
        steps in prop::collection::vec(step(), 1..24),
    ) {
        use secrecy::SecretString;
        let domains = ["dev", "prod", "stage", "qa"];
        let secrets = ["db", "api-key", "token"];
        let mut f = base_file();
        let memo = BlockMemo::default();
        same_through_memo(f.to_yaml_string().as_bytes(), &memo);
        prop_assert_eq!(memo.assembled(), 1);
        for st in steps {
            let text = match st {
                Step::Update(d, s, v) => {
                    let _ = f.update_secret(domains[d], secrets[s % 3], &SecretString::from(format!("v{v}")));
                    f.to_yaml_string()
                }
                Step::Add(d, v) => {
                    let _ = f.add_secret(domains[d], &format!("n{v}"), &SecretString::from("x".to_string()));
                    f.to_yaml_string()
                }
                Step::Remove(d, s) => {
                    let _ = f.rm_secret(domains[d], secrets[s]);
                    f.to_yaml_string()
                }
                Step::Truncate(n) => {
                    f.truncate_audit_log(n);
                    f.to_yaml_string()
                }
                Step::Edit(at, what, with) => edit(&f.to_yaml_string(), at, what, with),
                Step::DuplicateBlock(i) => {
                    let text = f.to_yaml_string();
                    let b = blocks(&text);
                    format!("{text}{}", b[i % b.len()])
                }
                Step::SwapBlocks(i, j) => {
                    let mut b = blocks(&f.to_yaml_string());
                    let n = b.len();
                    b.swap(i % n, j % n);
                    b.concat()
                }
                Step::DropBlock(i) => {
                    let mut b = blocks(&f.to_yaml_string());
                    let n = b.len();
                    b.remove(i % n);
                    b.concat()
                }
            };
            same_through_memo(text.as_bytes(), &memo);
        }
    }

    /// Emitted and hostile trees through a memo that has read a real file.
    #[test]
    fn hostile_files_read_the_same_through_the_block_memo(
        t in root(),
        at in any::<usize>(),
        what in any::<u8>(),
        with in interesting_char(),
    ) {
        let memo = BlockMemo::default();
        same_through_memo(base_file().to_yaml_string().as_bytes(), &memo);
        let text = emit(&node(&t));
        same_through_memo(text.as_bytes(), &memo);
        same_through_memo(edit(&text, at, what, with).as_bytes(), &memo);
    }
}
