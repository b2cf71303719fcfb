//! Consumption analysis of a group and day-ahead forecasts of a group's or a meter's energy,
//! computed on request from the pipeline's stored aggregates with `hes_analytics` (no table of
//! their own). A group is served only to a caller that sees every meter in it: its aggregates
//! sum them all.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use dlms::ObisCode;
use hes_analytics::consumption::{days_range, whole_days, Inputs};
use hes_analytics::{ForecastError, DAY_S, DEFAULT_CHANNEL};
use hes_model::meter::MeterRecord;
use hes_model::Period;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::readings::channel_name;
use super::visible_meter;
use crate::auth::{unix_now, Permission, Principal};
use crate::error::ApiError;
use crate::extract::{opt_time, rfc3339, ApiPath, ApiQuery};
use crate::AppState;

/// The longest range one consumption analysis covers.
const MAX_DAYS: i64 = 92;
/// Top consumers listed unless told, and at most.
const TOP_DEFAULT: usize = 10;
const TOP_MAX: usize = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsumptionQuery {
    /// first day, RFC 3339 or Unix seconds at 00:00 UTC (default: the day before `to`)
    from: Option<String>,
    /// the day after the last, at 00:00 UTC (default: today 00:00 UTC, so yesterday is analysed)
    to: Option<String>,
    /// channel name (default energy.active.import) or OBIS code
    channel: Option<String>,
    /// how many top consumers to list (default 10, at most 100)
    top: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForecastQuery {
    /// channel name (default energy.active.import) or OBIS code
    channel: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoadHour {
    start: String,
    /// Wh in the hour (also the hour's mean demand in W).
    energy_wh: f64,
    /// Every meter's every interval of the hour was in.
    complete: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopConsumer {
    meter: String,
    energy_wh: f64,
}

/// A group's consumption over whole UTC days.
#[derive(Debug, Serialize, ToSchema)]
pub struct Consumption {
    group: String,
    channel: String,
    from: String,
    to: String,
    /// Hours with a stored aggregate, oldest first; missing hours are absent, not zero.
    load_curve: Vec<LoadHour>,
    hours_missing: usize,
    energy_wh: f64,
    /// The highest hourly mean demand (W) and the start of its hour.
    peak_demand_w: Option<f64>,
    peak_at: Option<String>,
    mean_demand_w: Option<f64>,
    /// Mean over peak demand, 0 to 1.
    load_factor: Option<f64>,
    /// The group's meters by energy in the range, largest first.
    top_consumers: Vec<TopConsumer>,
    /// The range's last day against the day before, in % (null without both days stored).
    day_over_day_pct: Option<f64>,
    /// The range's last 7 days against the 7 before, in % (null without all 14 stored).
    week_over_week_pct: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastHour {
    start: String,
    energy_wh: f64,
}

/// The served model against the seasonal-naive baseline over the history's last days.
#[derive(Debug, Serialize, ToSchema)]
pub struct BacktestFigures {
    days: usize,
    /// Mean absolute percentage error of the forecast model (MSTL).
    mape_pct: f64,
    /// The same of the seasonal-naive baseline (same hour last week).
    baseline_mape_pct: f64,
}

/// A day-ahead forecast of hourly energy.
#[derive(Debug, Serialize, ToSchema)]
pub struct Forecast {
    /// A group (`key=value`) or a meter id.
    subject: String,
    channel: String,
    /// The forecast day, 00:00 UTC: the day after today.
    day: String,
    hourly: Vec<ForecastHour>,
    energy_wh: f64,
    history_hours: usize,
    /// `mstl`, or `seasonal_naive` when the baseline did better in the backtest.
    model: String,
    backtest: Option<BacktestFigures>,
}

/// The aggregates' channel name of a `channel` parameter (a name or an OBIS code).
fn channel_of(channel: Option<&str>) -> String {
    match channel.filter(|c| !c.is_empty()) {
        None => DEFAULT_CHANNEL.to_string(),
        Some(c) => c
            .parse::<ObisCode>()
            .map_or_else(|_| c.to_string(), |o| channel_name(&o)),
    }
}

/// The active meters of group `key=value` when the caller sees every one of them; a group the
/// caller sees no meter of is "not found", one it sees only part of is forbidden.
fn visible_group(
    state: &AppState,
    who: &Principal,
    key: &str,
    value: &str,
) -> Result<Vec<Arc<MeterRecord>>, ApiError> {
    if key.is_empty() {
        return Err(ApiError::BadRequest("the group key is empty".into()));
    }
    let members = state.registry.in_group(key, value);
    let seen = members
        .iter()
        .filter(|m| who.sees_groups(&m.groups))
        .count();
    if seen == 0 {
        return Err(ApiError::NotFound(format!("group {key}={value}")));
    }
    if seen < members.len() {
        return Err(ApiError::Forbidden(format!(
            "group {key}={value} has meters outside your groups"
        )));
    }
    Ok(members)
}

fn forecast_error(e: ForecastError) -> ApiError {
    match e {
        ForecastError::Model(m) => ApiError::Internal(m),
        // Too little, too patchy or too old a history: said, not invented.
        other => ApiError::Conflict(other.to_string()),
    }
}

async fn forecast_of(state: &AppState, subject: &str, channel: &str) -> Result<Forecast, ApiError> {
    let now = unix_now();
    let (from, to) = hes_analytics::history_range(now);
    let aggs = state
        .store
        .aggregates(
            &[subject.to_string()],
            Some(channel),
            Period::Hour,
            from,
            to - 1,
        )
        .await?;
    let history = hes_analytics::hourly(&aggs, from, to);
    // MSTL over eight weeks, backtested on seven days: tens of milliseconds of CPU.
    let f = tokio::task::spawn_blocking(move || hes_analytics::day_ahead(&history, from, now))
        .await
        .map_err(ApiError::internal)?
        .map_err(forecast_error)?;
    Ok(Forecast {
        subject: subject.to_string(),
        channel: channel.to_string(),
        day: rfc3339(f.day),
        hourly: f
            .hourly_wh
            .iter()
            .zip(0..)
            .map(|(&e, h)| ForecastHour {
                start: rfc3339(f.day + h * hes_analytics::HOUR_S),
                energy_wh: e,
            })
            .collect(),
        energy_wh: f.energy_wh,
        history_hours: f.history_hours,
        model: f.model.to_string(),
        backtest: f.backtest.map(|b| BacktestFigures {
            days: b.days,
            mape_pct: b.mape,
            baseline_mape_pct: b.baseline_mape,
        }),
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/analytics/groups/{key}/{value}/consumption",
    operation_id = "get_analytics_groups_key_value_consumption",
    tag = "analytics",
    summary = "A group's consumption over whole days: load curve, peak, load factor, top consumers, day-over-day and week-over-week change",
    params(("key" = String, Path, description = "group key"), ("value" = String, Path, description = "group value"), ConsumptionQuery),
    responses((status = 200, description = "the analysis", body = Consumption), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404)),
)]
pub async fn group_consumption(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((key, value)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<ConsumptionQuery>,
) -> Result<Json<Consumption>, ApiError> {
    who.require(Permission::Read)?;
    let members = visible_group(&state, &who, &key, &value)?;
    let today = unix_now() - unix_now().rem_euclid(DAY_S);
    let to = opt_time("to", &q.to)?.unwrap_or(today);
    let from = opt_time("from", &q.from)?.unwrap_or(to - DAY_S);
    if !whole_days(from, to) {
        return Err(ApiError::BadRequest(
            "from and to must be 00:00 UTC, from before to".into(),
        ));
    }
    if to - from > MAX_DAYS * DAY_S {
        return Err(ApiError::BadRequest(format!(
            "the range is limited to {MAX_DAYS} days"
        )));
    }
    let top = q.top.unwrap_or(TOP_DEFAULT).min(TOP_MAX);
    let channel = channel_of(q.channel.as_deref());
    let subject = format!("{key}={value}");
    let subjects = [subject.clone()];
    let hours = state
        .store
        .aggregates(&subjects, Some(&channel), Period::Hour, from, to - 1)
        .await?;
    let (days_from, days_to) = days_range(from, to);
    let days = state
        .store
        .aggregates(
            &subjects,
            Some(&channel),
            Period::Day,
            days_from,
            days_to - 1,
        )
        .await?;
    let ids: Vec<String> = members.iter().map(|m| m.id.0.clone()).collect();
    let per_meter = state
        .store
        .aggregates(&ids, Some(&channel), Period::Day, from, to - 1)
        .await?;
    let a = hes_analytics::analyse(&Inputs {
        subject: &subject,
        channel: &channel,
        from,
        to,
        hours: &hours,
        days: &days,
        per_meter: &per_meter,
        top,
    });
    Ok(Json(Consumption {
        group: a.subject,
        channel: a.channel,
        from: rfc3339(a.from),
        to: rfc3339(a.to),
        load_curve: a
            .load_curve
            .into_iter()
            .map(|h| LoadHour {
                start: rfc3339(h.start),
                energy_wh: h.energy_wh,
                complete: h.complete,
            })
            .collect(),
        hours_missing: a.hours_missing,
        energy_wh: a.energy_wh,
        peak_demand_w: a.peak_demand_w,
        peak_at: a.peak_at.map(rfc3339),
        mean_demand_w: a.mean_demand_w,
        load_factor: a.load_factor,
        top_consumers: a
            .top_consumers
            .into_iter()
            .map(|c| TopConsumer {
                meter: c.meter,
                energy_wh: c.energy_wh,
            })
            .collect(),
        day_over_day_pct: a.day_over_day_pct,
        week_over_week_pct: a.week_over_week_pct,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/analytics/groups/{key}/{value}/forecast",
    operation_id = "get_analytics_groups_key_value_forecast",
    tag = "analytics",
    summary = "A group's hourly energy forecast for tomorrow (UTC), with its backtest against the seasonal-naive baseline",
    params(("key" = String, Path, description = "group key"), ("value" = String, Path, description = "group value"), ForecastQuery),
    responses((status = 200, description = "the forecast", body = Forecast), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404), (status = 409, response = crate::openapi::P409)),
)]
pub async fn group_forecast(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((key, value)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<ForecastQuery>,
) -> Result<Json<Forecast>, ApiError> {
    who.require(Permission::Read)?;
    visible_group(&state, &who, &key, &value)?;
    let channel = channel_of(q.channel.as_deref());
    Ok(Json(
        forecast_of(&state, &format!("{key}={value}"), &channel).await?,
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/analytics/meters/{id}/forecast",
    operation_id = "get_analytics_meters_id_forecast",
    tag = "analytics",
    summary = "A meter's hourly energy forecast for tomorrow (UTC), with its backtest against the seasonal-naive baseline",
    params(("id" = String, Path, description = "meter id"), ForecastQuery),
    responses((status = 200, description = "the forecast", body = Forecast), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404), (status = 409, response = crate::openapi::P409)),
)]
pub async fn meter_forecast(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ForecastQuery>,
) -> Result<Json<Forecast>, ApiError> {
    who.require(Permission::Read)?;
    let m = visible_meter(&state, &who, &id)?;
    let channel = channel_of(q.channel.as_deref());
    Ok(Json(forecast_of(&state, &m.id.0, &channel).await?))
}
