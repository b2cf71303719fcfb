//! Fleet statistics: meters online, today's read success, completeness, alarms, jobs.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::Json;
use hes_model::MeterId;
use serde::{Deserialize, Serialize};

use super::visible_ids;
use crate::accounts::{EventFilter, Severity};
use crate::auth::{unix_now, Permission, Principal};
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::AppState;
use utoipa::{IntoParams, ToSchema};

/// The channel whose 15-minute entries completeness counts.
const COMPLETENESS_OBIS: &str = "1.0.1.8.0.255";
const PER_DAY: u64 = 96;
/// Expensive fleet-wide numbers are reused for this long.
const SLOW_TTL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Fleet {
    meters_total: usize,
    meters_online: usize,
    /// Succeeded reads / finished reads today (UTC); null when none finished yet.
    read_success_rate_today: Option<f64>,
    /// Stored 15-minute entries today / expected so far today (fleet-wide).
    completeness_today: f64,
    alarms_open: u64,
    jobs_queued: usize,
    jobs_running: usize,
    jobs_succeeded_today: usize,
    jobs_failed_today: usize,
    readings_stored: u64,
}

/// The fleet-wide numbers that cost a scan.
#[derive(Debug, Clone, Copy)]
pub struct Slow {
    readings_stored: u64,
    completeness_today: f64,
}

fn day_start(t: i64) -> i64 {
    t - t.rem_euclid(86_400)
}

/// Scoped callers' slow numbers kept at once (per set of groups).
const SCOPED_CACHE: usize = 256;

/// The active meters a principal sees (`None`: every meter).
fn scoped_active(state: &AppState, who: &Principal) -> Option<Vec<String>> {
    (!who.unrestricted()).then(|| {
        state
            .registry
            .in_group("", "")
            .iter()
            .filter(|m| who.sees_groups(&m.groups))
            .map(|m| m.id.0.clone())
            .collect()
    })
}

/// The slow numbers within a group-scoped principal's meters (its readings only: fleet-wide
/// figures would tell it about other groups), reused for [`SLOW_TTL`] per set of groups.
async fn slow_scoped(state: &AppState, who: &Principal) -> Result<Slow, ApiError> {
    let mut key = who.groups_text();
    key.sort();
    let key = key.join(",");
    let cached = state
        .scoped_stats
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        .copied();
    if let Some((at, s)) = cached {
        if at.elapsed() < SLOW_TTL {
            return Ok(s);
        }
    }
    let meters = scoped_active(state, who).unwrap_or_default();
    let now = unix_now();
    let today = day_start(now);
    let per_day = state
        .accounts
        .readings_per_day_of(COMPLETENESS_OBIS, today, today + 86_400, &meters)
        .await?;
    let stored: u64 = per_day.iter().map(|(_, n)| n).sum();
    let elapsed_intervals = ((now - today) / 900).max(1) as u64;
    let expected = meters.len() as u64 * elapsed_intervals.min(PER_DAY);
    let all: Vec<String> = state
        .registry
        .all()
        .iter()
        .filter(|m| who.sees_groups(&m.groups))
        .map(|m| m.id.0.clone())
        .collect();
    let s = Slow {
        readings_stored: state.accounts.readings_total_of(&all).await?,
        completeness_today: ratio(stored, expected),
    };
    let mut cache = state.scoped_stats.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= SCOPED_CACHE {
        cache.clear();
    }
    cache.insert(key, (Instant::now(), s));
    Ok(s)
}

/// The slow numbers: fresh from the cache; stale ones are answered at once while one
/// background task refreshes them (no request waits on a fleet-wide scan but the very first).
async fn slow(state: &AppState) -> Result<Slow, ApiError> {
    let cached = *state.stats_cache.lock().unwrap_or_else(|p| p.into_inner());
    match cached {
        Some((at, s)) if at.elapsed() < SLOW_TTL => Ok(s),
        Some((_, s)) => {
            if !state
                .stats_refreshing
                .swap(true, std::sync::atomic::Ordering::AcqRel)
            {
                let st = state.clone();
                tokio::spawn(async move {
                    if let Err(e) = refresh_slow(&st).await {
                        tracing::warn!(error = %e, "refreshing the fleet statistics");
                    }
                    st.stats_refreshing
                        .store(false, std::sync::atomic::Ordering::Release);
                });
            }
            Ok(s)
        }
        None => {
            // The first computation: one at a time, the others wait for it.
            let _first = state.stats_init.lock().await;
            let cached = *state.stats_cache.lock().unwrap_or_else(|p| p.into_inner());
            match cached {
                Some((_, s)) => Ok(s),
                None => refresh_slow(state).await,
            }
        }
    }
}

async fn refresh_slow(state: &AppState) -> Result<Slow, ApiError> {
    let now = unix_now();
    let today = day_start(now);
    let per_day = state
        .accounts
        .readings_per_day(COMPLETENESS_OBIS, today, today + 86_400)
        .await?;
    let stored: u64 = per_day.iter().map(|(_, n)| n).sum();
    let active = state.registry.in_group("", "").len() as u64;
    let elapsed_intervals = ((now - today) / 900).max(1) as u64;
    let expected = active * elapsed_intervals.min(PER_DAY);
    let s = Slow {
        readings_stored: state.accounts.readings_total().await?,
        completeness_today: ratio(stored, expected),
    };
    *state.stats_cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), s));
    Ok(s)
}

fn ratio(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        (n as f64 / of as f64).min(1.0)
    }
}

/// Jobs by state (queued, running, succeeded today, failed today) and reads (succeeded,
/// failed) today, within the principal's scope: one query of the store's jobs (every node's).
async fn job_counts(
    state: &AppState,
    who: &Principal,
    today: i64,
) -> Result<([usize; 4], (usize, usize)), ApiError> {
    let scope: Option<Vec<MeterId>> = (!who.unrestricted()).then(|| {
        state
            .registry
            .all()
            .iter()
            .filter(|m| who.sees_groups(&m.groups))
            .map(|m| m.id.clone())
            .collect()
    });
    let n = state
        .registry
        .state()
        .job_counts(today, scope.as_deref())
        .await
        .map_err(ApiError::internal)?;
    let u = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    Ok((
        [u(n.queued), u(n.running), u(n.succeeded), u(n.failed)],
        (u(n.reads_succeeded), u(n.reads_failed)),
    ))
}

/// The fleet numbers a principal may see (meters and jobs within its scope).
pub async fn fleet_for(state: &AppState, who: &Principal) -> Result<Fleet, ApiError> {
    let now = unix_now();
    let today = day_start(now);
    let meters: Vec<MeterId> = state
        .registry
        .all()
        .iter()
        .filter(|m| who.sees_groups(&m.groups))
        .map(|m| m.id.clone())
        .collect();
    let online = state
        .cache
        .online(&meters, now, state.config.online_within_s)
        .await?
        .iter()
        .filter(|(_, on)| *on)
        .count();
    let (counts, reads) = job_counts(state, who, today).await?;
    let (_, alarms_open) = state
        .accounts
        .events(&EventFilter {
            meters: visible_ids(state, who),
            severity: Some(Severity::Alarm),
            acknowledged: Some(false),
            limit: 0,
            ..EventFilter::default()
        })
        .await?;
    let s = if who.unrestricted() {
        slow(state).await?
    } else {
        slow_scoped(state, who).await?
    };
    let [queued, running, ok, failed] = counts;
    let (read_ok, read_failed) = reads;
    Ok(Fleet {
        meters_total: meters.len(),
        meters_online: online,
        read_success_rate_today: (read_ok + read_failed > 0)
            .then(|| read_ok as f64 / (read_ok + read_failed) as f64),
        completeness_today: s.completeness_today,
        alarms_open,
        jobs_queued: queued,
        jobs_running: running,
        jobs_succeeded_today: ok,
        jobs_failed_today: failed,
        readings_stored: s.readings_stored,
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/stats/fleet",
    operation_id = "get_stats_fleet",
    tag = "stats",
    summary = "Fleet figures for the caller's scope",
    responses((status = 200, description = "the figures", body = Fleet), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403)),
)]
pub async fn fleet(State(state): State<AppState>, who: Principal) -> Result<Json<Fleet>, ApiError> {
    who.require(Permission::Read)?;
    Ok(Json(fleet_for(&state, &who).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DaysQuery {
    days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DayCompleteness)]
pub struct DayJson {
    day: String,
    completeness: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Days {
    items: Vec<DayJson>,
    total: u64,
    limit: u32,
    offset: u32,
}

#[utoipa::path(
    get,
    path = "/api/v1/stats/completeness",
    operation_id = "get_stats_completeness",
    tag = "stats",
    summary = "Completeness of 15-minute data per day",
    params(DaysQuery),
    responses((status = 200, description = "one item per day, newest first", body = Days), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403)),
)]
/// Fleet-wide completeness per UTC day, oldest first, today last.
pub async fn completeness(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<DaysQuery>,
) -> Result<Json<Days>, ApiError> {
    who.require(Permission::Read)?;
    let days = q.days.unwrap_or(7).clamp(1, 366);
    let now = unix_now();
    let today = day_start(now);
    let first = today - i64::from(days - 1) * 86_400;
    let (per_day, active) = match scoped_active(&state, &who) {
        None => (
            state
                .accounts
                .readings_per_day(COMPLETENESS_OBIS, first, today + 86_400)
                .await?,
            state.registry.in_group("", "").len() as u64,
        ),
        Some(meters) => (
            state
                .accounts
                .readings_per_day_of(COMPLETENESS_OBIS, first, today + 86_400, &meters)
                .await?,
            meters.len() as u64,
        ),
    };
    let mut items = Vec::with_capacity(days as usize);
    for i in 0..i64::from(days) {
        let d = first + i * 86_400;
        let n = per_day
            .iter()
            .find(|(day, _)| *day == d)
            .map_or(0, |(_, n)| *n);
        let expected = if d == today {
            active * (((now - today) / 900).max(1) as u64).min(PER_DAY)
        } else {
            active * PER_DAY
        };
        let day = crate::extract::rfc3339(d);
        items.push(DayJson {
            day: day.get(..10).unwrap_or(&day).to_string(),
            completeness: ratio(n, expected),
        });
    }
    Ok(Json(Days {
        total: items.len() as u64,
        limit: days,
        offset: 0,
        items,
    }))
}
