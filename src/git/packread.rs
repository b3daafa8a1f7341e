//! Reading many versions of one file from a repository's packs.
//!
//! A pack stores most versions as deltas in chains. gix's object reads
//! cache the objects asked for, not the ones a chain passes through, so a
//! history read in any order the pack did not anticipate decodes whole
//! chains again and again (after `git repack -adf` that made
//! check-audit-log twice as slow as `git log -p`). [`VersionReader`]
//! does what git's delta base cache does: it walks an object's chain down
//! to the first entry it decoded before, then decodes upward through
//! gix-pack's own decoder, keeping each intermediate object, so the next
//! version usually costs one delta.
//!
//! Anything unusual (a loose object, an object in another object
//! directory, a delta against an object named by id, a corrupt entry)
//! falls back to gix's ordinary read.

use std::collections::HashMap;
use std::path::PathBuf;

use gix::ObjectId;
use gix::odb::pack::{self, cache::DecodeEntry, data};

/// Longest delta chain followed (git's default maximum is 50; aggressive
/// repacks go to 250). Longer chains take gix's ordinary read.
const MAX_CHAIN: usize = 4096;

/// The pack holding `id` and the object's offset in it.
fn locate<'b>(bundles: &'b [pack::Bundle], id: &gix::oid) -> Option<(&'b pack::Bundle, u64)> {
    bundles.iter().find_map(|b| {
        b.index
            .lookup(id)
            .map(|i| (b, b.index.pack_offset_at_index(i)))
    })
}

/// Reads blobs, caching decoded pack entries up to a memory budget.
pub struct VersionReader {
    repo: gix::Repository,
    bundles: Vec<pack::Bundle>,
    cache: EntryCache,
    inflate: gix::zlib::Inflate,
    fallbacks: usize,
}

impl VersionReader {
    /// A reader over `repo`'s own packs, with `cache_bytes` of decoded
    /// entries kept.
    pub fn new(repo: gix::Repository, cache_bytes: usize) -> VersionReader {
        let dir = repo.objects.store_ref().path().join("pack");
        let mut indexes: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "idx"))
                    .collect()
            })
            .unwrap_or_default();
        indexes.sort();
        let hash = repo.object_hash();
        let bundles = indexes
            .iter()
            .filter_map(|p| pack::Bundle::at(p, hash).ok())
            .collect();
        VersionReader {
            repo,
            bundles,
            cache: EntryCache::new(cache_bytes),
            inflate: gix::zlib::Inflate::default(),
            fallbacks: 0,
        }
    }

    /// The repository this reader reads.
    pub fn repo(&self) -> &gix::Repository {
        &self.repo
    }

    /// How many reads took gix's ordinary path.
    pub fn fallbacks(&self) -> usize {
        self.fallbacks
    }

    /// The pack entries (by pack and data offset) that reading `id`
    /// decodes: the object and its chain of offset-delta bases (empty when
    /// it is not packed).
    fn chain_of(&self, id: &ObjectId) -> Vec<(u32, u64)> {
        let Some((bundle, offset)) = locate(&self.bundles, id) else {
            return Vec::new();
        };
        let pack = &bundle.pack;
        let mut chain = Vec::new();
        let mut at = offset;
        while let Ok(entry) = pack.entry(at) {
            chain.push((pack.id, entry.data_offset));
            let data::entry::Header::OfsDelta { base_distance } = entry.header else {
                break;
            };
            match entry.checked_base_pack_offset(base_distance) {
                Some(base) if chain.len() <= MAX_CHAIN => at = base,
                _ => break,
            }
        }
        chain
    }

    /// Plan the reads to come, in their order: the cache then keeps a
    /// decoded entry only while a later read still passes through it, and
    /// drops it as soon as none does (reading along the delta chains, that
    /// is a handful of entries instead of a full budget's worth).
    pub fn plan(&mut self, reads: &[ObjectId]) {
        let mut wanted: HashMap<(u32, u64), u32> = HashMap::new();
        for id in reads {
            for key in self.chain_of(id) {
                *wanted.entry(key).or_default() += 1;
            }
        }
        self.cache.wanted = Some(wanted);
    }

    /// An object's size from its pack header (following its delta chain's
    /// headers, through this reader's own mapping of the pack), or else
    /// through gix.
    pub fn size(&mut self, id: ObjectId) -> crate::error::Result<u64> {
        let packed = locate(&self.bundles, &id);
        if let Some((bundle, offset)) = packed
            && let Ok(entry) = bundle.pack.entry(offset)
            && let Ok(outcome) =
                bundle
                    .pack
                    .decode_header(entry, &mut self.inflate, &|_: &gix::oid| Ok(None))
        {
            return Ok(outcome.object_size);
        }
        Ok(self
            .repo
            .find_header(id)
            .map_err(|e| crate::error::Error::git(format!("cannot read object {id}"), e))?
            .size())
    }

    /// A blob's bytes, from the packs or else through gix.
    pub fn read(&mut self, id: ObjectId) -> crate::error::Result<Vec<u8>> {
        let data = self.read_unplanned(id);
        if self.cache.wanted.is_some() {
            for key in self.chain_of(&id) {
                self.cache.used_once(key);
            }
        }
        data
    }

    fn read_unplanned(&mut self, id: ObjectId) -> crate::error::Result<Vec<u8>> {
        if let Some(data) = self.read_packed(&id) {
            return Ok(data);
        }
        self.fallbacks += 1;
        let mut blob = self
            .repo
            .find_blob(id)
            .map_err(|e| crate::error::Error::git(format!("cannot read object {id}"), e))?;
        Ok(blob.take_data())
    }

    fn read_packed(&mut self, id: &ObjectId) -> Option<Vec<u8>> {
        let (bundle, offset) = locate(&self.bundles, id)?;
        let pack = &bundle.pack;
        let blob = |kind: gix::object::Kind, out: Vec<u8>| {
            (kind == gix::object::Kind::Blob).then_some(out)
        };
        let mut entry = pack.entry(offset).ok()?;
        let mut out = Vec::new();
        if let Some((kind, _)) = self.cache.get(pack.id, entry.data_offset, &mut out) {
            return blob(kind, out);
        }
        // The chain, from the object down to an entry decoded before or a
        // whole object.
        let mut chain: Vec<data::Entry> = Vec::new();
        loop {
            let base = match entry.header {
                data::entry::Header::OfsDelta { base_distance } => {
                    Some(entry.checked_base_pack_offset(base_distance)?)
                }
                _ => None,
            };
            chain.push(entry);
            if chain.len() > MAX_CHAIN {
                return None;
            }
            let Some(at) = base else { break };
            entry = pack.entry(at).ok()?;
            if self.cache.contains(pack.id, entry.data_offset) {
                break;
            }
        }
        // Decode upward: the first step starts from a cached entry or a
        // whole object, every later one from the entry just decoded (a
        // cache hit), so each costs one delta.
        let resolve = |_: &gix::oid, _: &mut Vec<u8>| Ok(None);
        let mut kind = None;
        let top = (pack.id, chain[0].data_offset);
        self.cache.top = Some(top);
        for e in chain.into_iter().rev() {
            let data_offset = e.data_offset;
            let whole = !e.header.is_delta();
            let outcome = pack
                .decode_entry(e, &mut out, &mut self.inflate, &resolve, &mut self.cache)
                .ok()?;
            if whole {
                // gix caches delta results itself, not whole objects.
                self.cache.put(
                    pack.id,
                    data_offset,
                    &out,
                    outcome.kind,
                    outcome.compressed_size,
                );
            }
            kind = Some(outcome.kind);
        }
        self.cache.top = None;
        blob(kind?, out)
    }
}

/// Decoded pack entries by (pack, offset), least recently used dropped
/// first once over the budget.
struct EntryCache {
    entries: HashMap<(u32, u64), Cached>,
    used: usize,
    budget: usize,
    clock: u64,
    /// With a plan: how many reads to come pass through each entry; an
    /// entry no read will pass through again is not kept.
    wanted: Option<HashMap<(u32, u64), u32>>,
    /// The entry the read under way returns: not kept (a copy of a
    /// whole version) when no later read passes through it.
    top: Option<(u32, u64)>,
}

struct Cached {
    data: Vec<u8>,
    kind: gix::object::Kind,
    compressed_size: usize,
    last_use: u64,
}

impl EntryCache {
    fn new(budget: usize) -> EntryCache {
        EntryCache {
            entries: HashMap::new(),
            used: 0,
            budget,
            clock: 0,
            wanted: None,
            top: None,
        }
    }

    fn contains(&self, pack: u32, offset: u64) -> bool {
        self.entries.contains_key(&(pack, offset))
    }

    /// A planned read passed through `key`: one use fewer; dropped when
    /// no read to come needs it.
    fn used_once(&mut self, key: (u32, u64)) {
        let Some(wanted) = self.wanted.as_mut() else {
            return;
        };
        let Some(n) = wanted.get_mut(&key) else {
            return;
        };
        *n = n.saturating_sub(1);
        if *n == 0 {
            wanted.remove(&key);
            if let Some(c) = self.entries.remove(&key) {
                self.used -= c.data.len();
            }
        }
    }
}

impl DecodeEntry for EntryCache {
    fn put(
        &mut self,
        pack_id: u32,
        offset: u64,
        data: &[u8],
        kind: gix::object::Kind,
        compressed_size: usize,
    ) {
        if data.len() > self.budget || self.contains(pack_id, offset) {
            return;
        }
        if let Some(wanted) = &self.wanted {
            // The read under way is one of the planned reads through its
            // own entry; only a later one is a reason to keep it.
            let later = if self.top == Some((pack_id, offset)) {
                1
            } else {
                0
            };
            if wanted.get(&(pack_id, offset)).is_none_or(|n| *n <= later) {
                return;
            }
        }
        while self.used + data.len() > self.budget {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, c)| c.last_use)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(c) = self.entries.remove(&oldest) {
                self.used -= c.data.len();
            }
        }
        self.clock += 1;
        self.used += data.len();
        self.entries.insert(
            (pack_id, offset),
            Cached {
                data: data.to_vec(),
                kind,
                compressed_size,
                last_use: self.clock,
            },
        );
    }

    fn get(
        &mut self,
        pack_id: u32,
        offset: u64,
        out: &mut Vec<u8>,
    ) -> Option<(gix::object::Kind, usize)> {
        self.clock += 1;
        let c = self.entries.get_mut(&(pack_id, offset))?;
        c.last_use = self.clock;
        out.clear();
        out.extend_from_slice(&c.data);
        Some((c.kind, c.compressed_size))
    }
}
