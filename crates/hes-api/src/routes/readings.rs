//! A meter's readings by channel and time range: raw as the meter gave them, or hourly, daily
//! and monthly consumption totals; JSON or CSV.
//!
//! Raw readings carry the pipeline's quality flags; totals are the aggregates the pipeline
//! stored, or, when the store holds none for the range, computed from the raw cumulative
//! registers with the pipeline's own functions.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use dlms::ObisCode;
use hes_model::{Period, Reading, ValidatedReading};
use serde::{Deserialize, Serialize};

use super::visible_meter;
use crate::auth::{unix_now, Permission, Principal};
use crate::error::ApiError;
use crate::extract::{opt_time, rfc3339, ApiPath, ApiQuery, List, Page, Stamp};
use crate::AppState;
use utoipa::{IntoParams, ToSchema};

/// The longest range one request may ask for.
const MAX_RANGE_S: i64 = 366 * 86_400;

/// DLMS unit codes as text (Blue Book `scaler_unit` enumeration, the ones meters use).
pub fn unit_text(u: u8) -> &'static str {
    match u {
        1 => "a",
        2 => "mo",
        3 => "wk",
        4 => "d",
        5 => "h",
        6 => "min",
        7 => "s",
        8 => "°",
        9 => "°C",
        27 => "W",
        28 => "VA",
        29 => "var",
        30 => "Wh",
        31 => "VAh",
        32 => "varh",
        33 => "A",
        35 => "V",
        44 => "Hz",
        _ => "",
    }
}

/// The pipeline's channel name of an OBIS code, or its dotted text.
pub fn channel_name(o: &ObisCode) -> String {
    hes_rules::channel(o).map_or_else(|| o.to_string(), str::to_string)
}

pub fn si_value(r: &Reading) -> f64 {
    hes_rules::to_si(r)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    Raw,
    Hour,
    Day,
    Month,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadingsQuery {
    /// RFC 3339 or Unix seconds
    from: Option<String>,
    /// RFC 3339 or Unix seconds
    to: Option<String>,
    /// channel name (energy.active.import) or OBIS code
    channel: Option<String>,
    #[param(inline)]
    resolution: Option<Resolution>,
    #[param(inline)]
    format: Option<Format>,
    limit: Option<u32>,
    offset: Option<u32>,
}

impl ReadingsQuery {
    fn page(&self) -> Page {
        Page {
            limit: self.limit,
            offset: self.offset,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Reading)]
pub struct RawItem<'a> {
    #[schema(value_type = String)]
    time: Stamp,
    channel: &'a str,
    obis: &'a str,
    value: f64,
    unit: &'static str,
    quality: u32,
    flags: Vec<&'static str>,
    status: u8,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Aggregate)]
pub struct AggItem {
    period_start: String,
    period_end: String,
    channel: String,
    total: f64,
    count: u32,
    complete: bool,
    quality: u32,
}

/// The OBIS codes `channel` names (`None`: every channel).
async fn channels(
    state: &AppState,
    meter: &str,
    channel: Option<&str>,
) -> Result<Option<Vec<ObisCode>>, ApiError> {
    let Some(c) = channel.filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    if let Ok(o) = c.parse::<ObisCode>() {
        return Ok(Some(vec![o]));
    }
    // A channel name: the meter's stored objects that carry it (none: an empty answer).
    let stored = state.accounts.reading_channels(meter).await?;
    Ok(Some(
        stored
            .iter()
            .filter_map(|s| s.parse::<ObisCode>().ok())
            .filter(|o| hes_rules::channel(o) == Some(c))
            .collect(),
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/meters/{id}/readings",
    operation_id = "get_meters_id_readings",
    tag = "readings",
    summary = "Readings by channel and time range (at most 366 days)",
    params(("id" = String, Path, description = "meter id"), ReadingsQuery),
    responses((status = 200, description = "raw items or period totals; CSV with format=csv", content((crate::openapi::ReadingsPage = "application/json"), (String = "text/csv"))), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404)),
)]
pub async fn readings(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReadingsQuery>,
) -> Result<Response, ApiError> {
    who.require(Permission::Read)?;
    let m = visible_meter(&state, &who, &id)?;
    let to = opt_time("to", &q.to)?.unwrap_or_else(unix_now);
    let from = opt_time("from", &q.from)?.unwrap_or(to - 86_400);
    if from > to {
        return Err(ApiError::BadRequest("from is after to".into()));
    }
    if to.saturating_sub(from) > MAX_RANGE_S {
        return Err(ApiError::BadRequest(format!(
            "the range is limited to {} days",
            MAX_RANGE_S / 86_400
        )));
    }
    let resolution = q.resolution.unwrap_or(Resolution::Raw);
    let period = match resolution {
        Resolution::Raw => None,
        Resolution::Hour => Some(Period::Hour),
        Resolution::Day => Some(Period::Day),
        Resolution::Month => Some(Period::Month),
    };
    let format = q.format.unwrap_or(Format::Json);
    let page = q.page();
    let obis = channels(&state, &m.id.0, q.channel.as_deref()).await?;
    let Some(p) = period else {
        // Raw readings with their quality flags, one query per requested channel (or one for
        // all of them).
        let mut rows: Vec<ValidatedReading> = Vec::new();
        match &obis {
            None => {
                rows = state
                    .store
                    .meter_readings(&m.id, None, from, to, hes_store::MAX_PAGE)
                    .await?;
            }
            Some(list) => {
                for o in list {
                    rows.extend(
                        state
                            .store
                            .meter_readings(&m.id, Some(*o), from, to, hes_store::MAX_PAGE)
                            .await?,
                    );
                }
                rows.sort_by_key(|v| (v.reading.time, v.reading.obis, v.reading.attribute));
            }
        }
        // The channel name and dotted code of each OBIS code, once per code, not per row.
        let mut names: Vec<(ObisCode, String, String)> = Vec::new();
        for v in &rows {
            let o = v.reading.obis;
            if !names.iter().any(|(n, _, _)| *n == o) {
                names.push((o, channel_name(&o), o.to_string()));
            }
        }
        let items: Vec<RawItem> = rows
            .iter()
            .map(|v| {
                let r = &v.reading;
                let (channel, obis) = names
                    .iter()
                    .find(|(n, _, _)| *n == r.obis)
                    .map_or(("", ""), |(_, c, o)| (c.as_str(), o.as_str()));
                RawItem {
                    time: Stamp(r.time),
                    channel,
                    obis,
                    value: si_value(r),
                    unit: unit_text(r.unit),
                    quality: v.quality.0,
                    flags: v.quality.names(),
                    status: r.status,
                }
            })
            .collect();
        return Ok(match format {
            Format::Json => json(&List::page(items, &page)),
            Format::Csv => csv_raw(&items, &m.id.0),
        });
    };
    let lo = p.start(from);
    // The pipeline's stored aggregates; computed here from the raw registers when the store
    // has none for the range (a store fed without the pipeline).
    let names: Option<Vec<String>> = obis.as_ref().map(|l| l.iter().map(channel_name).collect());
    let mut aggs = Vec::new();
    match &names {
        None => {
            aggs = state
                .store
                .aggregates(std::slice::from_ref(&m.id.0), None, p, lo, to)
                .await?;
        }
        Some(names) => {
            for n in names {
                aggs.extend(
                    state
                        .store
                        .aggregates(std::slice::from_ref(&m.id.0), Some(n), p, lo, to)
                        .await?,
                );
            }
        }
    }
    if aggs.is_empty() {
        let load_from = lo.saturating_sub(900);
        let mut rows = Vec::new();
        match &obis {
            None => {
                rows = state
                    .store
                    .meter_readings(&m.id, None, load_from, to, hes_store::MAX_PAGE)
                    .await?;
            }
            Some(list) => {
                for o in list {
                    rows.extend(
                        state
                            .store
                            .meter_readings(&m.id, Some(*o), load_from, to, hes_store::MAX_PAGE)
                            .await?,
                    );
                }
            }
        }
        let intervals = hes_rules::intervals(&rows);
        aggs = hes_rules::aggregate(&intervals, p);
    }
    aggs.sort_by(|a, b| (a.period_start, &a.channel).cmp(&(b.period_start, &b.channel)));
    let items: Vec<AggItem> = aggs
        .into_iter()
        .filter(|a| a.period_start >= lo && a.period_start <= to)
        .map(|a| AggItem {
            period_start: rfc3339(a.period_start),
            period_end: rfc3339(a.period_end),
            channel: a.channel,
            total: a.total,
            count: a.count,
            complete: a.complete,
            quality: a.quality_worst.0,
        })
        .collect();
    Ok(match format {
        Format::Json => json(&List::page(items, &page)),
        Format::Csv => csv_agg(&items, &m.id.0),
    })
}

/// A JSON answer serialised into one buffer sized for it (axum's `Json` starts at 128 bytes
/// and grows by copying: a week of 15-minute readings is ~100 KB).
fn json<T: Serialize>(value: &List<T>) -> Response {
    let mut body = Vec::with_capacity(256 + value.items.len() * 160);
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

fn csv_response(body: String, meter: &str) -> Response {
    let name: String = meter
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}.csv\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

fn csv_raw(items: &[RawItem], meter: &str) -> Response {
    let mut out = String::with_capacity(items.len() * 64 + 64);
    out.push_str("time,channel,obis,value,unit,quality,flags\n");
    for r in items {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{}",
            r.time,
            r.channel,
            r.obis,
            r.value,
            r.unit,
            r.quality,
            r.flags.join(";")
        );
    }
    csv_response(out, meter)
}

fn csv_agg(items: &[AggItem], meter: &str) -> Response {
    let mut out = String::with_capacity(items.len() * 80 + 64);
    out.push_str("period_start,period_end,channel,total,count,complete,quality\n");
    for a in items {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{}",
            a.period_start, a.period_end, a.channel, a.total, a.count, a.complete, a.quality
        );
    }
    csv_response(out, meter)
}
