//! The report an import ends with: counts per kind of thing and outcome, and one entry per skip or
//! loss, each with its reason in words an operator acts on (spec §11).
//!
//! It names portals by alias and users by e-mail and upstream id, never anything secret: no machine key,
//! password hash, backup code, recovered password or `core_settings` value can reach it, because no
//! field of it is built from one (the entry texts are written by the importer, not copied from rows).

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Value, json};

/// What a count or an entry is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A portal (tenant).
    Portal,
    /// A user.
    User,
    /// A user's password.
    Password,
    /// A phone number.
    Phone,
    /// An authenticator-app enrolment.
    Totp,
    /// One backup code.
    BackupCode,
    /// A social-account link.
    Link,
    /// A portal setting that has no equivalent here.
    Setting,
    /// A line of a JSONL file.
    Line,
}

impl Kind {
    /// The plural used in the table and the JSON keys.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Portal => "portals",
            Kind::User => "users",
            Kind::Password => "passwords",
            Kind::Phone => "phones",
            Kind::Totp => "totp",
            Kind::BackupCode => "backup_codes",
            Kind::Link => "links",
            Kind::Setting => "settings",
            Kind::Line => "lines",
        }
    }
}

/// What happened to one thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// New here.
    Created,
    /// Existed and was changed.
    Updated,
    /// Existed and was already the same.
    Unchanged,
    /// Not imported; an entry says why.
    Skipped,
}

impl Outcome {
    /// Its column name.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
        }
    }

    const ALL: [Outcome; 4] =
        [Outcome::Created, Outcome::Updated, Outcome::Unchanged, Outcome::Skipped];
}

/// One line of the report's list: a skip (nothing of it imported) or a note (imported, but something
/// was lost or needs the operator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What it is about.
    pub kind: Kind,
    /// Which one: a portal alias, `email (upstream id)`, a line number.
    pub subject: String,
    /// Why, in words.
    pub reason: String,
    /// True when the thing was not imported at all.
    pub skipped: bool,
}

/// The whole report.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Whether nothing was written.
    pub dry_run: bool,
    counts: BTreeMap<Kind, BTreeMap<Outcome, u64>>,
    entries: Vec<Entry>,
}

impl Report {
    /// An empty report.
    pub fn new(dry_run: bool) -> Self {
        Self { dry_run, ..Self::default() }
    }

    /// Counts one thing.
    pub fn count(&mut self, kind: Kind, outcome: Outcome) {
        self.add(kind, outcome, 1);
    }

    /// Counts `n` things.
    pub fn add(&mut self, kind: Kind, outcome: Outcome, n: u64) {
        *self.counts.entry(kind).or_default().entry(outcome).or_default() += n;
    }

    /// Records a skip: counted, and listed with its reason.
    pub fn skip(&mut self, kind: Kind, subject: impl Into<String>, reason: impl Into<String>) {
        self.count(kind, Outcome::Skipped);
        self.entries.push(Entry {
            kind,
            subject: subject.into(),
            reason: reason.into(),
            skipped: true,
        });
    }

    /// Records a note about something that was imported.
    pub fn note(&mut self, kind: Kind, subject: impl Into<String>, reason: impl Into<String>) {
        self.entries.push(Entry {
            kind,
            subject: subject.into(),
            reason: reason.into(),
            skipped: false,
        });
    }

    /// How many things of `kind` ended in `outcome`.
    pub fn get(&self, kind: Kind, outcome: Outcome) -> u64 {
        self.counts.get(&kind).and_then(|m| m.get(&outcome)).copied().unwrap_or(0)
    }

    /// The list, in the order it was recorded.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// True when nothing was created or updated.
    pub fn all_unchanged(&self) -> bool {
        self.counts.values().all(|m| {
            m.get(&Outcome::Created).is_none_or(|n| *n == 0)
                && m.get(&Outcome::Updated).is_none_or(|n| *n == 0)
        })
    }

    /// The report as JSON: `{"dryRun":…, "counts":{"users":{"created":1,…},…}, "entries":[…]}`.
    pub fn to_json(&self) -> Value {
        let counts: serde_json::Map<String, Value> = self
            .counts
            .iter()
            .map(|(k, m)| {
                let per: serde_json::Map<String, Value> = Outcome::ALL
                    .iter()
                    .map(|o| (o.name().to_owned(), json!(m.get(o).copied().unwrap_or(0))))
                    .collect();
                (k.name().to_owned(), Value::Object(per))
            })
            .collect();
        let entries: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                json!({
                    "kind": e.kind.name(),
                    "subject": e.subject,
                    "reason": e.reason,
                    "skipped": e.skipped,
                })
            })
            .collect();
        json!({ "dryRun": self.dry_run, "counts": counts, "entries": entries })
    }

    /// The report as text: a table of counts, then the skips, then the notes.
    /// At most `max_entries` of each list are printed (the JSON form has them all).
    pub fn write_text(&self, out: &mut dyn Write, max_entries: usize) -> std::io::Result<()> {
        if self.dry_run {
            writeln!(out, "dry run: nothing was written; this is what the import would do")?;
        }
        let mut rows = vec![vec![
            "KIND".to_owned(),
            "CREATED".to_owned(),
            "UPDATED".to_owned(),
            "UNCHANGED".to_owned(),
            "SKIPPED".to_owned(),
        ]];
        for (kind, m) in &self.counts {
            let mut row = vec![kind.name().to_owned()];
            row.extend(Outcome::ALL.iter().map(|o| m.get(o).copied().unwrap_or(0).to_string()));
            rows.push(row);
        }
        let widths: Vec<usize> = (0..5)
            .map(|i| rows.iter().filter_map(|r| r.get(i)).map(String::len).max().unwrap_or(0))
            .collect();
        for row in &rows {
            let cells: Vec<String> =
                row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            writeln!(out, "{}", cells.join("  ").trim_end())?;
        }
        for (title, skipped) in [("skipped", true), ("notes", false)] {
            let list: Vec<&Entry> = self.entries.iter().filter(|e| e.skipped == skipped).collect();
            if list.is_empty() {
                continue;
            }
            writeln!(out, "{title} ({}):", list.len())?;
            for e in list.iter().take(max_entries) {
                writeln!(out, "  {} {}: {}", singular(e.kind), e.subject, e.reason)?;
            }
            if list.len() > max_entries {
                writeln!(out, "  … and {} more (--json lists them all)", list.len() - max_entries)?;
            }
        }
        Ok(())
    }
}

fn singular(kind: Kind) -> &'static str {
    match kind {
        Kind::Portal => "portal",
        Kind::User => "user",
        Kind::Password => "password of",
        Kind::Phone => "phone of",
        Kind::Totp => "authenticator of",
        Kind::BackupCode => "backup code of",
        Kind::Link => "link of",
        Kind::Setting => "setting of",
        Kind::Line => "line",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_skips_and_notes_render_as_text_and_json() {
        let mut r = Report::new(true);
        r.count(Kind::Portal, Outcome::Created);
        r.skip(Kind::Portal, "old_deleted (id 2)", "deleted");
        r.add(Kind::User, Outcome::Unchanged, 3);
        r.note(Kind::Password, "olga@acme.test", "legacy password recovered");
        assert_eq!(r.get(Kind::Portal, Outcome::Skipped), 1);
        assert!(!r.all_unchanged());

        let mut text = Vec::new();
        r.write_text(&mut text, 10).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.starts_with("dry run"), "{text}");
        assert!(text.contains("portals  1        0        0          1"), "{text}");
        assert!(text.contains("skipped (1):\n  portal old_deleted (id 2): deleted"), "{text}");
        assert!(
            text.contains("notes (1):\n  password of olga@acme.test: legacy password recovered")
        );

        let j = r.to_json();
        assert_eq!(j["dryRun"], true);
        assert_eq!(j["counts"]["users"]["unchanged"], 3);
        assert_eq!(j["entries"][0]["reason"], "deleted");
        assert_eq!(j["entries"][1]["skipped"], false);
    }

    #[test]
    fn long_lists_are_cut_in_text_only() {
        let mut r = Report::new(false);
        for n in 0..5 {
            r.skip(Kind::Line, n.to_string(), "bad");
        }
        let mut text = Vec::new();
        r.write_text(&mut text, 2).unwrap();
        assert!(String::from_utf8(text).unwrap().contains("… and 3 more"));
        assert_eq!(r.to_json()["entries"].as_array().unwrap().len(), 5);
        let mut same = Report::new(false);
        same.add(Kind::User, Outcome::Unchanged, 2);
        assert!(same.all_unchanged());
    }
}
