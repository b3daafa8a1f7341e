//! The protected file as data: domains, key custodians and the audit log,
//! with the conversion from and to YAML and every schema rule of
//! pocket_protector's format.
//!
//! ```yaml
//! dev:                         # a domain
//!   secret-db-password: AL...  # a sealed secret
//!   meta:
//!     public-key: AJ...        # the domain's X25519 public key
//!     owners:
//!       alice@example.com: AI...   # domain private key sealed to alice
//! key-custodians:
//!   alice@example.com:
//!     pwdkm: ALY...            # alice's key material
//! audit-log:
//! - 2026-11-28T09:11:54Z -- created
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::codec::{self, Node, Yaml};
use crate::crypto::{self, KEY_SIZE, Pwdkm, SEAL_OVERHEAD};
use crate::error::{Error, Result};

/// A whole protected file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtectedFile {
    /// Domains by name. Shared: versions of a file read from history
    /// share the domains they have in common (and compare them by
    /// pointer first); change one through [`Arc::make_mut`].
    pub domains: BTreeMap<String, Arc<Domain>>,
    /// Key custodians by name.
    pub custodians: BTreeMap<String, Pwdkm>,
    /// The audit log, oldest first.
    pub audit_log: Vec<String>,
}

/// One domain: a keypair whose private half is sealed to each owner, and
/// secrets sealed to its public half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// The domain's X25519 public key.
    pub public_key: [u8; KEY_SIZE],
    /// Owner name to the domain private key sealed to that owner.
    pub owners: BTreeMap<String, Vec<u8>>,
    /// Secret name (without `secret-`) to its sealed value.
    pub secrets: BTreeMap<String, Vec<u8>>,
}

/// Names of the two fixed top-level sections.
pub const KEY_CUSTODIANS: &str = "key-custodians";
/// See [`KEY_CUSTODIANS`].
pub const AUDIT_LOG: &str = "audit-log";

/// Whether `name` is a valid secret name: `^[A-Za-z][-_A-Za-z0-9]*$`.
pub fn is_valid_secret_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A secret name as `exec --uppercase` names its variable: ASCII letters
/// and digits upper-cased, everything else `_`.
pub fn env_var_name(secret: &str) -> String {
    secret
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether `c` is a C0 or C1 control character (`[\x00-\x1f\x7f-\x9f]`).
pub fn is_control(c: char) -> bool {
    matches!(c as u32, 0x00..=0x1f | 0x7f..=0x9f)
}

/// Whether `c` must not reach a terminal as it is: a control character,
/// or a bidirectional-text control (U+061C, U+200E, U+200F,
/// U+202A-U+202E, U+2066-U+2069), with which a name can display as
/// another (`Trojan Source`).
pub fn is_display_unsafe(c: char) -> bool {
    is_control(c)
        || matches!(c as u32, 0x061c | 0x200e | 0x200f | 0x202a..=0x202e | 0x2066..=0x2069)
}

/// Whether `name` may name a custodian or owner: non-empty, no control
/// characters.
pub fn is_valid_custodian_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(is_control)
}

/// Why `name` may not name a domain, if it may not.
pub fn domain_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.chars().any(is_control) {
        Some("contains control characters")
    } else if name.starts_with("meta") {
        Some("begins with \"meta\", which is reserved")
    } else if name == KEY_CUSTODIANS || name == AUDIT_LOG {
        Some("is reserved")
    } else {
        None
    }
}

fn trust_kdf_params() -> bool {
    std::env::var(crypto::TRUST_KDF_ENV)
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .unwrap_or(false)
}

/// A named thing in error messages (`domain "dev"`), formatted only when
/// an error needs it.
#[derive(Clone, Copy)]
struct Named<'a>(&'static str, &'a str);

impl std::fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", self.0, self.1)
    }
}

// Descriptions (`what`) are closures: building them for every value of a
// large file would cost more than reading it.
fn expect_map(node: &Yaml, what: impl FnOnce() -> String) -> Result<&[(String, usize, Yaml)]> {
    match node {
        Yaml::Map { entries, .. } => Ok(entries),
        other => Err(Error::invalid(
            Some(other.line()),
            format!("{} must be a mapping, found {}", what(), other.kind()),
        )),
    }
}

fn expect_str(node: &Yaml, what: impl FnOnce() -> String) -> Result<&str> {
    match node {
        Yaml::Str { value, .. } => Ok(value),
        other => Err(Error::invalid(
            Some(other.line()),
            format!("{} must be a string, found {}", what(), other.kind()),
        )),
    }
}

fn sealed(node: &Yaml, what: impl Fn() -> String) -> Result<Vec<u8>> {
    let s = expect_str(node, &what)?;
    let bytes = crypto::decode_v0(s)
        .map_err(|e| Error::invalid(Some(node.line()), format!("{} {e}", what())))?;
    if bytes.len() < SEAL_OVERHEAD {
        return Err(Error::invalid(
            Some(node.line()),
            format!(
                "{} is truncated ({} bytes; a sealed value has at least {SEAL_OVERHEAD})",
                what(),
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

impl ProtectedFile {
    /// Parse and validate file contents.
    pub fn from_bytes(bytes: &[u8]) -> Result<ProtectedFile> {
        let yaml = codec::parse_bytes(bytes)?;
        Self::from_yaml(&yaml)
    }

    /// Validate a parsed YAML tree against the format.
    pub fn from_yaml(yaml: &Yaml) -> Result<ProtectedFile> {
        let entries = expect_map(yaml, || "the file's top level".into())?;
        let mut file = ProtectedFile::default();
        let mut domains = Vec::new();
        let mut custodians = Vec::new();
        let mut seen_custodians = false;
        let mut seen_log = false;
        let trust = trust_kdf_params();
        for (key, line, value) in entries {
            match top_entry(key, *line, value, trust)? {
                TopEntry::Custodians(c) => {
                    seen_custodians = true;
                    custodians.extend(c.iter().cloned());
                }
                TopEntry::Log(l) => {
                    seen_log = true;
                    file.audit_log.extend(l.iter().cloned());
                }
                TopEntry::Domain(name, domain) => domains.push((name.to_string(), domain)),
            }
        }
        if !seen_custodians {
            return Err(Error::invalid(
                Some(yaml.line()),
                "missing the key-custodians section".into(),
            ));
        }
        // Keys are unique (the parser refuses duplicates); sorted input,
        // as canonical files have, builds in linear time.
        file.domains = domains.into_iter().collect();
        file.custodians = custodians.into_iter().collect();
        if !seen_log {
            return Err(Error::invalid(
                Some(yaml.line()),
                "missing the audit-log section".into(),
            ));
        }
        Ok(file)
    }

    /// [`ProtectedFile::from_bytes`] for one of many versions of a file:
    /// each top-level block (a domain, `key-custodians`, `audit-log`)
    /// byte-identical to one `memo` read before is taken from there
    /// instead of being parsed again. The result, and any error, is
    /// exactly `from_bytes`'s: anything but a canonical file whose blocks
    /// each read on their own is left to `from_bytes`.
    pub fn from_bytes_memo(bytes: &[u8], memo: &BlockMemo) -> Result<ProtectedFile> {
        match memo.assemble(bytes) {
            Some(f) => Ok(f),
            None => Self::from_bytes(bytes),
        }
    }

    /// The canonical file contents, byte-identical to pocket_protector's.
    pub fn to_yaml_string(&self) -> String {
        let encoded: Vec<(&str, EncodedDomain)> = self
            .domains
            .iter()
            .map(|(name, d)| (name.as_str(), EncodedDomain::new(d)))
            .collect();
        let custodians: Vec<(&str, String)> = self
            .custodians
            .iter()
            .map(|(name, p)| (name.as_str(), p.encode()))
            .collect();
        let mut top: Vec<(&str, Node<'_>)> =
            encoded.iter().map(|(name, d)| (*name, d.node())).collect();
        top.push((
            KEY_CUSTODIANS,
            Node::Map(
                custodians
                    .iter()
                    .map(|(name, p)| (*name, Node::Map(vec![("pwdkm", Node::Str(p))])))
                    .collect(),
            ),
        ));
        top.push((
            AUDIT_LOG,
            Node::Seq(self.audit_log.iter().map(String::as_str).collect()),
        ));
        codec::emit(&Node::Map(top))
    }

    /// Domains `name` owns, sorted.
    pub fn owned_domains(&self, name: &str) -> Vec<&str> {
        self.domains
            .iter()
            .filter(|(_, d)| d.owners.contains_key(name))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Secret name to the sorted names of the domains holding it.
    pub fn all_secret_names(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (dname, d) in &self.domains {
            for sname in d.secrets.keys() {
                map.entry(sname.as_str()).or_default().push(dname.as_str());
            }
        }
        map
    }
}

/// One top-level entry of a file, validated on its own.
#[derive(Debug, Clone)]
enum TopEntry {
    Custodians(Arc<[(String, Pwdkm)]>),
    Log(Arc<[String]>),
    Domain(Arc<str>, Arc<Domain>),
}

/// Validate one top-level entry (`key` at `line`).
fn top_entry(key: &str, line: usize, value: &Yaml, trust: bool) -> Result<TopEntry> {
    match key {
        KEY_CUSTODIANS => {
            let mut custodians = Vec::new();
            for (name, nline, data) in expect_map(value, || "key-custodians".into())? {
                if !is_valid_custodian_name(name) {
                    return Err(Error::invalid(
                        Some(*nline),
                        "key custodian name is empty or contains control characters".into(),
                    ));
                }
                let what = Named("key custodian", name);
                let fields = expect_map(data, || what.to_string())?;
                let mut pwdkm = None;
                for (field, fline, fval) in fields {
                    if field != "pwdkm" {
                        return Err(Error::invalid(
                            Some(*fline),
                            format!("unexpected key {field:?} in {what}"),
                        ));
                    }
                    let s = expect_str(fval, || format!("pwdkm of {what}"))?;
                    pwdkm = Some(Pwdkm::parse(s, trust).map_err(|e| {
                        Error::invalid(Some(fval.line()), format!("custodian {name:?} {e}"))
                    })?);
                }
                let pwdkm = pwdkm.ok_or_else(|| {
                    Error::invalid(Some(data.line()), format!("{what} has no pwdkm"))
                })?;
                custodians.push((name.clone(), pwdkm));
            }
            Ok(TopEntry::Custodians(custodians.into()))
        }
        AUDIT_LOG => {
            let Yaml::Seq { items, .. } = value else {
                return Err(Error::invalid(
                    Some(value.line()),
                    format!("audit-log must be a list, found {}", value.kind()),
                ));
            };
            let mut log = Vec::with_capacity(items.len());
            for item in items {
                log.push(expect_str(item, || "audit-log entry".into())?.to_string());
            }
            Ok(TopEntry::Log(log.into()))
        }
        name => {
            if let Some(problem) = domain_name_problem(name) {
                return Err(Error::invalid(
                    Some(line),
                    format!("domain name {name:?} {problem}"),
                ));
            }
            let domain = Domain::from_yaml(name, value)?;
            Ok(TopEntry::Domain(name.into(), Arc::new(domain)))
        }
    }
}

/// Parses of top-level blocks seen in earlier versions of a file, for
/// [`ProtectedFile::from_bytes_memo`]; shared by the threads that parse
/// versions, so versions parsed on different threads share their domains
/// too. Blocks not used in the last [`MEMO_WINDOW`] versions are dropped,
/// so memory stays bounded however many versions are read.
#[derive(Debug, Default)]
pub struct BlockMemo {
    inner: std::sync::Mutex<MemoInner>,
}

/// One block's text, its parse, and the version that last used it.
type Variant = (Box<str>, TopEntry, u64);

#[derive(Debug, Default)]
struct MemoInner {
    /// By a block's first line: the blocks starting with it, whole, with
    /// their parse and the version that last used them.
    blocks: std::collections::HashMap<Box<str>, Vec<Variant>>,
    /// Versions assembled so far.
    generation: u64,
    /// The KDF-cost trust setting the parses were made under.
    trust: Option<bool>,
    /// Versions assembled from blocks (the others went to `from_bytes`).
    assembled: u64,
}

/// How many versions a block is kept for after its last use.
const MEMO_WINDOW: u64 = 1024;

/// How many blocks starting with the same line are kept: the audit log
/// changes at every version, and a lookup compares its block with each.
const MEMO_VARIANTS: usize = 16;

impl MemoInner {
    fn find(&mut self, first: &str, block: &str, generation: u64) -> Option<TopEntry> {
        let (_, entry, last) = self
            .blocks
            .get_mut(first)?
            .iter_mut()
            .find(|(b, _, _)| **b == *block)?;
        *last = generation;
        Some(entry.clone())
    }
}

impl BlockMemo {
    /// How many versions were assembled from blocks rather than left to
    /// `from_bytes`.
    pub fn assembled(&self) -> u64 {
        self.lock().assembled
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `bytes` assembled from memoized and freshly parsed blocks, or `None`
    /// where `from_bytes` must decide (not canonical, or any error).
    fn assemble(&self, bytes: &[u8]) -> Option<ProtectedFile> {
        if bytes.len() > codec::MAX_FILE_BYTES || !bytes.ends_with(b"\n") {
            return None;
        }
        let text = std::str::from_utf8(bytes).ok()?;
        if codec::find_conflict_marker(text).is_some() {
            return None;
        }
        let trust = trust_kdf_params();
        let generation = {
            let mut m = self.lock();
            if m.trust != Some(trust) {
                m.blocks.clear();
                m.trust = Some(trust);
            }
            m.generation += 1;
            let generation = m.generation;
            if generation.is_multiple_of(64) {
                m.blocks.retain(|_, v| {
                    v.retain(|(_, _, last)| generation - *last <= MEMO_WINDOW);
                    !v.is_empty()
                });
            }
            generation
        };
        let mut file = ProtectedFile::default();
        let mut domains: Vec<(String, Arc<Domain>)> = Vec::new();
        let (mut seen_custodians, mut seen_log) = (false, false);
        for block in top_level_blocks(text) {
            let first = &block[..block.find('\n').unwrap_or(block.len())];
            let found = self.lock().find(first, block, generation);
            let entry = match found {
                Some(entry) => entry,
                None => {
                    // Parsed outside the lock.
                    let Some(Yaml::Map { entries, .. }) = codec::parse_fast(block) else {
                        return None;
                    };
                    let [(key, line, value)] = entries.as_slice() else {
                        return None;
                    };
                    let entry = top_entry(key, *line, value, trust).ok()?;
                    let mut m = self.lock();
                    let variants = m.blocks.entry(first.into()).or_default();
                    if variants.len() >= MEMO_VARIANTS
                        && let Some(oldest) = (0..variants.len()).min_by_key(|&i| variants[i].2)
                    {
                        variants.swap_remove(oldest);
                    }
                    variants.push((block.into(), entry.clone(), generation));
                    entry
                }
            };
            match entry {
                TopEntry::Custodians(c) if !seen_custodians => {
                    seen_custodians = true;
                    file.custodians = c.iter().cloned().collect();
                }
                TopEntry::Log(l) if !seen_log => {
                    seen_log = true;
                    file.audit_log = l.to_vec();
                }
                TopEntry::Domain(name, d) => domains.push((name.to_string(), d)),
                // A second key-custodians or audit-log: a duplicate key.
                _ => return None,
            }
        }
        if !(seen_custodians && seen_log) {
            return None;
        }
        let n = domains.len();
        file.domains = domains.into_iter().collect();
        // A domain named twice: a duplicate key.
        if file.domains.len() != n {
            return None;
        }
        self.lock().assembled += 1;
        Some(file)
    }
}

/// The top-level blocks of `text`: each starts at a line that begins
/// neither with a space nor with `-` (an indentless sequence item) and
/// runs to the next.
fn top_level_blocks(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut starts = vec![0];
    for i in memchr::memchr_iter(b'\n', bytes) {
        let next = i + 1;
        if next < bytes.len() && !matches!(bytes[next], b' ' | b'-') {
            starts.push(next);
        }
    }
    starts.push(bytes.len());
    starts.windows(2).map(|w| &text[w[0]..w[1]]).collect()
}

impl Domain {
    fn from_yaml(name: &str, node: &Yaml) -> Result<Domain> {
        let what = Named("domain", name);
        let mut public_key = None;
        // Collected in file order, then built in one go: canonical files
        // list keys sorted, which makes the build linear. (Keys are unique:
        // the parser refuses duplicates.)
        let mut owners = Vec::new();
        let mut secrets = Vec::new();
        let mut seen_meta = false;
        for (key, kline, value) in expect_map(node, || what.to_string())? {
            if key == "meta" {
                seen_meta = true;
                let mut seen_owners = false;
                for (mkey, mline, mval) in expect_map(value, || format!("meta of {what}"))? {
                    match mkey.as_str() {
                        "public-key" => {
                            let s = expect_str(mval, || format!("public-key of {what}"))?;
                            let bytes = crypto::decode_v0(s).map_err(|e| {
                                Error::invalid(
                                    Some(mval.line()),
                                    format!("public-key of {what} {e}"),
                                )
                            })?;
                            let pk: [u8; KEY_SIZE] = bytes.as_slice().try_into().map_err(|_| {
                                Error::invalid(
                                    Some(mval.line()),
                                    format!(
                                        "public-key of {what} has {} bytes, expected {KEY_SIZE}",
                                        bytes.len()
                                    ),
                                )
                            })?;
                            public_key = Some(pk);
                        }
                        "owners" => {
                            seen_owners = true;
                            for (owner, oline, oval) in
                                expect_map(mval, || format!("owners of {what}"))?
                            {
                                if !is_valid_custodian_name(owner) {
                                    return Err(Error::invalid(
                                        Some(*oline),
                                        format!(
                                            "owner name in {what} is empty or contains control characters"
                                        ),
                                    ));
                                }
                                let bytes = sealed(oval, || format!("owner {owner:?} of {what}"))?;
                                owners.push((owner.clone(), bytes));
                            }
                        }
                        other => {
                            return Err(Error::invalid(
                                Some(*mline),
                                format!("unexpected key {other:?} in meta of {what}"),
                            ));
                        }
                    }
                }
                if public_key.is_none() {
                    return Err(Error::invalid(
                        Some(value.line()),
                        format!("meta of {what} has no public-key"),
                    ));
                }
                if !seen_owners {
                    return Err(Error::invalid(
                        Some(value.line()),
                        format!("meta of {what} has no owners"),
                    ));
                }
            } else if let Some(sname) = key.strip_prefix("secret-") {
                if !is_valid_secret_name(sname) {
                    return Err(Error::invalid(
                        Some(*kline),
                        format!("invalid secret name {sname:?} in {what}"),
                    ));
                }
                let bytes = sealed(value, || format!("secret {sname:?} of {what}"))?;
                secrets.push((sname.to_string(), bytes));
            } else {
                return Err(Error::invalid(
                    Some(*kline),
                    format!("unexpected key {key:?} in {what} (expected meta or secret-NAME)"),
                ));
            }
        }
        let (Some(public_key), true) = (public_key, seen_meta) else {
            return Err(Error::invalid(
                Some(node.line()),
                format!("{what} has no meta section"),
            ));
        };
        Ok(Domain {
            public_key,
            owners: owners.into_iter().collect(),
            secrets: secrets.into_iter().collect(),
        })
    }
}

/// A domain's values in their stored (base64) form, for emitting.
struct EncodedDomain {
    secrets: Vec<(String, String)>,
    public_key: String,
    owners: Vec<(String, String)>,
}

impl EncodedDomain {
    fn new(d: &Domain) -> Self {
        EncodedDomain {
            secrets: d
                .secrets
                .iter()
                .map(|(n, v)| (format!("secret-{n}"), crypto::encode_v0(v)))
                .collect(),
            public_key: crypto::encode_v0(&d.public_key),
            owners: d
                .owners
                .iter()
                .map(|(n, v)| (n.clone(), crypto::encode_v0(v)))
                .collect(),
        }
    }

    fn node(&self) -> Node<'_> {
        let mut entries: Vec<(&str, Node<'_>)> = self
            .secrets
            .iter()
            .map(|(k, v)| (k.as_str(), Node::Str(v)))
            .collect();
        entries.push((
            "meta",
            Node::Map(vec![
                ("public-key", Node::Str(&self.public_key)),
                (
                    "owners",
                    Node::Map(
                        self.owners
                            .iter()
                            .map(|(k, v)| (k.as_str(), Node::Str(v)))
                            .collect(),
                    ),
                ),
            ]),
        ));
        Node::Map(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_secret_name("a-b_C9"));
        assert!(!is_valid_secret_name("9a"));
        assert!(!is_valid_secret_name(""));
        assert!(!is_valid_secret_name("a.b"));
        assert!(domain_name_problem("metadata").is_some());
        assert!(domain_name_problem("dev").is_none());
        assert!(domain_name_problem("a\u{1b}b").is_some());
    }

    #[test]
    fn empty_file_round_trip() {
        let text = "key-custodians: {}\naudit-log:\n- 2026-11-28T09:12:00Z -- created\n";
        let f = ProtectedFile::from_bytes(text.as_bytes()).unwrap();
        assert_eq!(f.to_yaml_string(), text);
    }

    #[test]
    fn schema_errors_name_lines() {
        let e = ProtectedFile::from_bytes(b"key-custodians: {}\naudit-log:\n- 5\n").unwrap_err();
        assert_eq!(e.line(), Some(3));
        let e = ProtectedFile::from_bytes(b"key-custodians: {}\n").unwrap_err();
        assert!(e.message().contains("audit-log"));
        let e =
            ProtectedFile::from_bytes(b"dev: {}\nkey-custodians: {}\naudit-log: []\n").unwrap_err();
        assert!(e.message().contains("meta"), "{e}");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn file_with(log: Vec<String>, custodian: String, domain: String) -> ProtectedFile {
        let mut f = ProtectedFile::default();
        let pwdkm = Pwdkm {
            key_type: crypto::KeyType::Raw,
            salt: [1; 8],
            public_key: [2; 32],
        };
        f.custodians.insert(custodian.clone(), pwdkm);
        let mut owners = BTreeMap::new();
        owners.insert(custodian, vec![3; 80]);
        let mut secrets = BTreeMap::new();
        secrets.insert("s".to_string(), vec![4; 60]);
        f.domains.insert(
            domain,
            Arc::new(Domain {
                public_key: [5; 32],
                owners,
                secrets,
            }),
        );
        f.audit_log = log;
        f
    }

    // Names: printable, no control characters (U+0085 is one), U+2028
    // and U+2029 included (ruamel writes them raw inside single quotes
    // and reads them back as themselves; so does pprotect).
    // Up to the simple-key limit (128); longer keys take ruamel's
    // explicit `? key` form, outside this property.
    fn name() -> impl Strategy<Value = String> {
        "[^\\x00-\\x1f\\x7f-\\x9f\u{feff}]{1,120}"
    }

    // ruamel's own emitter does not round-trip a few strings (a `\\`
    // escape or a run of spaces at a fold point, U+0085); we
    // match its bytes there (tests/compat_python.rs) and check the
    // round trip on everything else: words of any other characters,
    // quotes and indicators included, joined by single spaces (escaped
    // control characters next to a fold are lossy in ruamel too, and so
    // are the \\L and \\P escapes there). Entries of the second kind hold
    // U+2028 and U+2029 inside words, which ruamel writes raw in single
    // quotes, folded or not, and reads back as themselves.
    fn log_entry() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::collection::vec("[^\\s\\\\\\x00-\\x1f\\x7f-\\x9f\u{feff}]{1,14}", 0..25,)
                .prop_map(|words| words.join(" ")),
            prop::collection::vec(
                prop_oneof![
                    "[a-z0-9.@-]{1,12}",
                    "[a-z]{1,3}[\u{2028}\u{2029}]{1,2}[a-z]{1,3}",
                ],
                1..25,
            )
            .prop_map(|words| words.join(" ")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn write_then_parse_is_identity(
            log in prop::collection::vec(log_entry(), 0..8),
            custodian in name(),
            domain in name().prop_filter("valid domain", |d| domain_name_problem(d).is_none()),
        ) {
            let f = file_with(log, custodian, domain);
            let text = f.to_yaml_string();
            let back = ProtectedFile::from_bytes(text.as_bytes());
            prop_assert!(back.is_ok(), "{:?}\n{}", back, text);
            prop_assert_eq!(back.unwrap(), f, "{:?}", text);
        }
    }
}
