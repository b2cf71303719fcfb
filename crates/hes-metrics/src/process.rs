//! The process's CPU, memory and descriptors, read from `/proc/self` at each scrape (Linux;
//! elsewhere nothing), under the names Prometheus's client libraries use (`process_*`), so that
//! the usual dashboards and rules apply.

const CPU: &str = "process_cpu_seconds_total";
const RSS: &str = "process_resident_memory_bytes";
const VSIZE: &str = "process_virtual_memory_bytes";
const FDS: &str = "process_open_fds";
const MAX_FDS: &str = "process_max_fds";
const START: &str = "process_start_time_seconds";
const THREADS: &str = "process_threads";

/// Clock ticks per second of `/proc/<pid>/stat` times: USER_HZ, 100 on every Linux ABI.
const TICKS: f64 = 100.0;

pub(crate) fn describe() {
    ::metrics::describe_gauge!(CPU, ::metrics::Unit::Seconds, "User and system CPU time.");
    ::metrics::describe_gauge!(RSS, ::metrics::Unit::Bytes, "Resident memory.");
    ::metrics::describe_gauge!(VSIZE, ::metrics::Unit::Bytes, "Virtual memory.");
    ::metrics::describe_gauge!(FDS, "Open file descriptors.");
    ::metrics::describe_gauge!(MAX_FDS, "The limit of open file descriptors.");
    ::metrics::describe_gauge!(START, ::metrics::Unit::Seconds, "Start time, Unix seconds.");
    ::metrics::describe_gauge!(THREADS, "Threads of the process.");
}

/// The figures of `/proc/self/stat` after the command name (which may hold spaces).
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

fn field(fields: &[&str], n: usize) -> Option<f64> {
    // `n` as numbered in proc(5); the fields after the name start at number 3.
    fields.get(n.checked_sub(3)?)?.parse().ok()
}

/// Refreshes the gauges; a figure that cannot be read is left as it was.
pub fn sample() {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    let f = stat_fields(&stat);
    if let (Some(u), Some(s)) = (field(&f, 14), field(&f, 15)) {
        ::metrics::gauge!(CPU).set((u + s) / TICKS);
    }
    if let Some(v) = field(&f, 23) {
        ::metrics::gauge!(VSIZE).set(v);
    }
    if let Some(t) = field(&f, 20) {
        ::metrics::gauge!(THREADS).set(t);
    }
    if let Some(rss_kb) = status_kb("VmRSS:") {
        ::metrics::gauge!(RSS).set(rss_kb * 1024.0);
    }
    if let (Some(start), Some(boot)) = (field(&f, 22), boot_time()) {
        ::metrics::gauge!(START).set(boot + start / TICKS);
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        // Counts as f64: exact far beyond any descriptor limit.
        #[allow(clippy::cast_precision_loss)]
        ::metrics::gauge!(FDS).set(dir.count() as f64);
    }
    if let Some(max) = max_open_files() {
        ::metrics::gauge!(MAX_FDS).set(max);
    }
}

fn status_kb(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("btime "))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn max_open_files() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 1000 \
                    123456 789 18446744073709551615";
        let f = stat_fields(stat);
        assert_eq!(field(&f, 14), Some(250.0));
        assert_eq!(field(&f, 15), Some(50.0));
        assert_eq!(field(&f, 20), Some(7.0));
        assert_eq!(field(&f, 22), Some(1000.0));
        assert_eq!(field(&f, 23), Some(123_456.0));
        assert_eq!(field(&f, 2), None);
    }
}
