//! The exporter: batches in, one staged Parquet file per touched partition, and at `finish`
//! every touched partition swapped in whole for the one it replaces.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hes_model::{Aggregate, Period, ValidatedReading};
use parquet::basic::Compression;
use parquet::file::properties::{WriterProperties, WriterPropertiesPtr};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::TypePtr;

use crate::date::Date;
use crate::schema::{self, Rows};
use crate::Error;

/// How the exporter sizes its files and bounds its memory.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExportOptions {
    /// Rows buffered per open file before they are written as one row group.
    pub row_group_rows: usize,
    /// Files open (with their buffers) at once; the least recently written one is finished
    /// when another is needed, and a later row for its partition starts a further file.
    pub max_open_files: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            row_group_rows: 65_536,
            max_open_files: 16,
        }
    }
}

impl ExportOptions {
    pub fn row_group_rows(mut self, n: usize) -> Self {
        self.row_group_rows = n.max(1);
        self
    }

    pub fn max_open_files(mut self, n: usize) -> Self {
        self.max_open_files = n.max(1);
        self
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Parquet files now in the dataset.
    pub files: u64,
    /// Rows in them (readings and aggregates).
    pub rows: u64,
    /// Date partitions written (each replaced whatever it held before).
    pub partitions: u64,
    /// Date partitions removed: claimed by [`Exporter::claim_range`] but given no rows.
    pub removed: u64,
}

/// One directory of the Hive layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Partition {
    Readings(Date),
    Aggregates(&'static str, Date),
}

impl Partition {
    fn path(&self) -> PathBuf {
        match self {
            Partition::Readings(d) => Path::new("readings").join(format!("date={d}")),
            Partition::Aggregates(p, d) => Path::new("aggregates")
                .join(format!("period={p}"))
                .join(format!("date={d}")),
        }
    }
}

struct OpenFile {
    writer: SerializedFileWriter<File>,
    rows: Rows,
    last_used: u64,
}

/// Writes readings and aggregates under `dir` in the Hive layout
/// (`readings/date=YYYY-MM-DD/part-<id>.parquet`,
/// `aggregates/period=hour|day|month/date=YYYY-MM-DD/part-<id>.parquet`).
///
/// Files are written into a private staging directory (`dir/.hes-export-<run>`); nothing in
/// the dataset changes until [`Exporter::finish`], which replaces each touched date partition
/// with what this export wrote to it (two renames). Dropping the exporter without finishing,
/// or after an error, removes the staging directory and leaves the dataset as it was.
pub struct Exporter {
    dir: PathBuf,
    staging: PathBuf,
    run: String,
    options: ExportOptions,
    properties: WriterPropertiesPtr,
    readings_schema: TypePtr,
    aggregates_schema: TypePtr,
    open: HashMap<Partition, OpenFile>,
    /// Files started per partition (the next file's sequence number).
    touched: BTreeMap<Partition, u32>,
    /// Day ranges whose partitions this export owns even where it writes nothing.
    claims: Vec<(Date, Date)>,
    clock: u64,
    rows: u64,
    finished: bool,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("dir", &self.dir)
            .field("run", &self.run)
            .field("open", &self.open.len())
            .field("partitions", &self.touched.len())
            .field("rows", &self.rows)
            .finish()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A name no other export (in this process or another) uses at the same time.
fn run_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}-{:x}-{seq}", std::process::id())
}

impl Exporter {
    pub fn new(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::with_options(dir, ExportOptions::default())
    }

    pub fn with_options(dir: impl AsRef<Path>, options: ExportOptions) -> Result<Self, Error> {
        let dir = dir.as_ref().to_path_buf();
        let run = run_id();
        let staging = dir.join(format!(".hes-export-{run}"));
        fs::create_dir_all(&staging).map_err(io(&staging))?;
        let properties = Arc::new(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .build(),
        );
        Ok(Self {
            dir,
            staging,
            run,
            options,
            properties,
            readings_schema: Arc::new(parse_message_type(schema::READINGS)?),
            aggregates_schema: Arc::new(parse_message_type(schema::AGGREGATES)?),
            open: HashMap::new(),
            touched: BTreeMap::new(),
            claims: Vec::new(),
            clock: 0,
            rows: 0,
            finished: false,
        })
    }

    /// Adds readings, each to the partition of its meter time's UTC date. A batch with a row
    /// the files cannot hold (a time outside the years 1..=9999) is refused whole.
    pub fn write_readings(&mut self, rows: &[ValidatedReading]) -> Result<(), Error> {
        let mut parts = Vec::with_capacity(rows.len());
        for r in rows {
            Rows::check_reading(r)?;
            let date = Date::of_time(r.reading.time).ok_or(Error::TimeOutOfRange {
                what: "reading time",
                time: r.reading.time,
            })?;
            parts.push(Partition::Readings(date));
        }
        for (r, part) in rows.iter().zip(parts) {
            self.push(part, |rows| match rows {
                Rows::Readings(v) => v.push(r.clone()),
                Rows::Aggregates(_) => {}
            })?;
        }
        Ok(())
    }

    /// Adds aggregates, each to the partition of its period and its `period_start`'s UTC
    /// date. A batch with a row the files cannot hold is refused whole.
    pub fn write_aggregates(&mut self, rows: &[Aggregate]) -> Result<(), Error> {
        let mut parts = Vec::with_capacity(rows.len());
        for a in rows {
            Rows::check_aggregate(a)?;
            let date = Date::of_time(a.period_start).ok_or(Error::TimeOutOfRange {
                what: "period_start",
                time: a.period_start,
            })?;
            parts.push(Partition::Aggregates(a.period.as_str(), date));
        }
        for (a, part) in rows.iter().zip(parts) {
            self.push(part, |rows| match rows {
                Rows::Aggregates(v) => v.push(a.clone()),
                Rows::Readings(_) => {}
            })?;
        }
        Ok(())
    }

    /// Makes this export own every date partition (readings, and aggregates of every period)
    /// of the UTC days from `from`'s to `to`'s: at [`Exporter::finish`] those it wrote nothing
    /// to are removed, so the dataset holds exactly this export's rows for those days.
    pub fn claim_range(&mut self, from: i64, to: i64) -> Result<(), Error> {
        let first = Date::of_time(from).ok_or(Error::TimeOutOfRange {
            what: "range start",
            time: from,
        })?;
        let last = Date::of_time(to).ok_or(Error::TimeOutOfRange {
            what: "range end",
            time: to,
        })?;
        if first <= last {
            self.claims.push((first, last));
        }
        Ok(())
    }

    fn push(&mut self, part: Partition, add: impl FnOnce(&mut Rows)) -> Result<(), Error> {
        self.clock += 1;
        if !self.open.contains_key(&part) {
            self.open_file(part)?;
        }
        let full = match self.open.get_mut(&part) {
            Some(f) => {
                add(&mut f.rows);
                f.last_used = self.clock;
                f.rows.len() >= self.options.row_group_rows
            }
            None => return Err(Error::Schema("partition file not open")),
        };
        self.rows += 1;
        if full {
            if let Some(f) = self.open.get_mut(&part) {
                f.rows.write_row_group(&mut f.writer)?;
            }
        }
        Ok(())
    }

    fn open_file(&mut self, part: Partition) -> Result<(), Error> {
        while self.open.len() >= self.options.max_open_files {
            let lru = self
                .open
                .iter()
                .min_by_key(|(_, f)| f.last_used)
                .map(|(p, _)| *p);
            match lru {
                Some(p) => self.seal(p)?,
                None => break,
            }
        }
        let seq = self.touched.entry(part).or_insert(0);
        let dir = self.staging.join(part.path());
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(format!("part-{}-{}.parquet", self.run, *seq));
        *seq += 1;
        let file = File::create(&path).map_err(io(&path))?;
        let (schema, rows) = match part {
            Partition::Readings(_) => (self.readings_schema.clone(), Rows::Readings(Vec::new())),
            Partition::Aggregates(..) => {
                (self.aggregates_schema.clone(), Rows::Aggregates(Vec::new()))
            }
        };
        let writer = SerializedFileWriter::new(file, schema, self.properties.clone())?;
        self.open.insert(
            part,
            OpenFile {
                writer,
                rows,
                last_used: self.clock,
            },
        );
        Ok(())
    }

    /// Finishes the open files of dates before `t`'s: a caller feeding rows in time order (as
    /// [`crate::export_range`] does) keeps one file open instead of many.
    pub(crate) fn seal_before(&mut self, t: i64) -> Result<(), Error> {
        let Some(date) = Date::of_time(t) else {
            return Ok(());
        };
        let old: Vec<Partition> = self
            .open
            .keys()
            .filter(|p| match p {
                Partition::Readings(d) | Partition::Aggregates(_, d) => *d < date,
            })
            .copied()
            .collect();
        for p in old {
            self.seal(p)?;
        }
        Ok(())
    }

    /// Finishes every open file (more rows for their partitions start further files).
    pub(crate) fn seal_all(&mut self) -> Result<(), Error> {
        let open: Vec<Partition> = self.open.keys().copied().collect();
        for p in open {
            self.seal(p)?;
        }
        Ok(())
    }

    /// Writes out a file's buffered rows and its footer, and syncs it.
    fn seal(&mut self, part: Partition) -> Result<(), Error> {
        if let Some(mut f) = self.open.remove(&part) {
            f.rows.write_row_group(&mut f.writer)?;
            let file = f.writer.into_inner()?;
            file.sync_all().map_err(io(&self.staging))?;
        }
        Ok(())
    }

    /// Finishes every file and swaps each touched partition (and each claimed one) into the
    /// dataset, replacing what it held.
    pub fn finish(mut self) -> Result<Summary, Error> {
        self.seal_all()?;
        let mut summary = Summary {
            rows: self.rows,
            ..Summary::default()
        };
        // From here on a failure leaves the staging directory (and the partitions moved aside
        // into it) for a person to look at, rather than dropping them.
        self.finished = true;
        let old = self.staging.join("old");
        for (part, files) in &self.touched {
            let rel = part.path();
            let target = self.dir.join(&rel);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(io(parent))?;
            }
            move_aside(&target, &old.join(&rel))?;
            let staged = self.staging.join(&rel);
            fs::rename(&staged, &target).map_err(io(&target))?;
            summary.files += u64::from(*files);
            summary.partitions += 1;
        }
        for rel in self.claimed_leftovers()? {
            move_aside(&self.dir.join(&rel), &old.join(&rel))?;
            summary.removed += 1;
        }
        fs::remove_dir_all(&self.staging).map_err(io(&self.staging))?;
        Ok(summary)
    }

    /// The existing partitions within a claimed range that this export did not write.
    fn claimed_leftovers(&self) -> Result<Vec<PathBuf>, Error> {
        if self.claims.is_empty() {
            return Ok(Vec::new());
        }
        let claimed = |d: Date| self.claims.iter().any(|(a, b)| *a <= d && d <= *b);
        let touched: BTreeSet<PathBuf> = self.touched.keys().map(Partition::path).collect();
        let mut parents = vec![PathBuf::from("readings")];
        for p in Period::ALL {
            parents.push(Path::new("aggregates").join(format!("period={}", p.as_str())));
        }
        let mut out = Vec::new();
        for parent in parents {
            let abs = self.dir.join(&parent);
            let entries = match fs::read_dir(&abs) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&abs)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io(&abs))?;
                let name = entry.file_name();
                let Some(date) = name
                    .to_str()
                    .and_then(|n| n.strip_prefix("date="))
                    .and_then(Date::parse)
                else {
                    continue;
                };
                let rel = parent.join(&name);
                if claimed(date) && !touched.contains(&rel) {
                    out.push(rel);
                }
            }
        }
        Ok(out)
    }
}

/// Moves an existing partition out of the dataset (into the staging directory, removed with
/// it); nothing to do when there is none.
fn move_aside(target: &Path, aside: &Path) -> Result<(), Error> {
    if let Some(parent) = aside.parent() {
        fs::create_dir_all(parent).map_err(io(parent))?;
    }
    match fs::rename(target, aside) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(target)(e)),
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if !self.finished {
            self.open.clear();
            // Best effort: a failed export leaves the dataset as it was.
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}
