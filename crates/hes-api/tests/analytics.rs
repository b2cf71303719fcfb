//! The analytics routes over stored aggregates: a group's consumption and the day-ahead
//! forecasts of a group and a meter, within the caller's groups.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use axum::http::{Method, StatusCode};
use common::{fixture, Fx};
use hes_model::{Aggregate, Period, Quality};
use hes_store::Store;

const CHANNEL: &str = "energy.active.import";
const DAY: i64 = 86_400;

fn agg(subject: &str, period: Period, start: i64, total: f64) -> Aggregate {
    Aggregate {
        subject: subject.into(),
        period,
        channel: CHANNEL.into(),
        period_start: start,
        period_end: start + if period == Period::Hour { 3600 } else { DAY },
        total,
        count: 4,
        complete: true,
        quality_worst: Quality::default(),
    }
}

/// A daily shape peaking at 18:00 UTC, 10 % more on weekdays than on weekends.
fn load(t: i64) -> f64 {
    let h = t.rem_euclid(DAY) / 3600;
    let weekday = (t.div_euclid(DAY) + 3).rem_euclid(7) < 5;
    let base = 1000.0 + 400.0 * ((h - 12) as f64 / 24.0 * std::f64::consts::TAU).sin();
    let peak = if h == 18 { 300.0 } else { 0.0 };
    (base + peak) * if weekday { 1.1 } else { 1.0 }
}

fn stamp(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn today() -> i64 {
    let now = hes_api::auth::unix_now();
    now - now.rem_euclid(DAY)
}

/// Three weeks of group `cell=cell-1`'s hours up to the last whole hour, its days, and its
/// meters' days (MTR00000002 the largest).
async fn store_history(fx: &Fx) {
    let now = hes_api::auth::unix_now();
    let end = now - now.rem_euclid(3600);
    let start = today() - 21 * DAY;
    let hours: Vec<Aggregate> = (0..)
        .map(|h| start + h * 3600)
        .take_while(|t| *t < end)
        .map(|t| agg("cell=cell-1", Period::Hour, t, load(t)))
        .collect();
    let mut days = Vec::new();
    for d in 0..21 {
        let day = start + d * DAY;
        let total: f64 = (0..24).map(|h| load(day + h * 3600)).sum();
        days.push(agg("cell=cell-1", Period::Day, day, total));
        for (m, share) in [
            ("MTR00000001", 0.2),
            ("MTR00000002", 0.5),
            ("MTR00000003", 0.3),
        ] {
            days.push(agg(m, Period::Day, day, total * share));
        }
    }
    fx.store.insert_aggregates(&hours).await.unwrap();
    fx.store.insert_aggregates(&days).await.unwrap();
}

#[tokio::test]
async fn a_groups_consumption_yesterday_and_over_a_week() {
    let fx = fixture().await;
    store_history(&fx).await;
    let viewer = fx.login("viewer").await;
    let r = fx
        .call(
            Method::GET,
            "/api/v1/analytics/groups/cell/cell-1/consumption?top=2",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let a = r.json();
    let yesterday = today() - DAY;
    assert_eq!(a["group"], "cell=cell-1");
    assert_eq!(a["channel"], CHANNEL);
    assert_eq!(a["load_curve"].as_array().unwrap().len(), 24);
    assert_eq!(a["hours_missing"], 0);
    assert_eq!(a["peak_at"], stamp(yesterday + 18 * 3600));
    let peak = a["peak_demand_w"].as_f64().unwrap();
    assert!((peak - load(yesterday + 18 * 3600)).abs() < 1e-6);
    let lf = a["load_factor"].as_f64().unwrap();
    assert!(lf > 0.5 && lf < 1.0, "{lf}");
    let top: Vec<&str> = a["top_consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["meter"].as_str().unwrap())
        .collect();
    assert_eq!(top, ["MTR00000002", "MTR00000003"]);
    // The shape repeats every week: week over week is flat, day over day follows the
    // weekday/weekend step.
    let wow = a["week_over_week_pct"].as_f64().unwrap();
    assert!(wow.abs() < 1e-9, "{wow}");
    let dod = a["day_over_day_pct"].as_f64().unwrap();
    let wd = |d: i64| (d.div_euclid(DAY) + 3).rem_euclid(7) < 5;
    let want = match (wd(yesterday), wd(yesterday - DAY)) {
        (true, false) => 10.0,
        (false, true) => -100.0 / 11.0,
        _ => 0.0,
    };
    assert!((dod - want).abs() < 1e-6, "{dod} {want}");

    // A week, in Unix seconds.
    let r = fx
        .call(
            Method::GET,
            &format!(
                "/api/v1/analytics/groups/cell/cell-1/consumption?from={}&to={}",
                today() - 7 * DAY,
                today()
            ),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["load_curve"].as_array().unwrap().len(), 7 * 24);

    // Not whole days, or too long a range.
    for q in [
        format!("from={}&to={}", today() - DAY + 5, today()),
        format!("from={}&to={}", today(), today() - DAY),
        format!("from={}&to={}", today() - 200 * DAY, today()),
    ] {
        let r = fx
            .call(
                Method::GET,
                &format!("/api/v1/analytics/groups/cell/cell-1/consumption?{q}"),
                Some(&viewer),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.text());
    }
}

#[tokio::test]
async fn forecasts_of_a_group_and_a_meter_and_a_refusal_without_history() {
    let fx = fixture().await;
    store_history(&fx).await;
    let viewer = fx.login("viewer").await;
    let r = fx
        .call(
            Method::GET,
            "/api/v1/analytics/groups/cell/cell-1/forecast",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let f = r.json();
    let tomorrow = today() + DAY;
    assert_eq!(f["subject"], "cell=cell-1");
    assert_eq!(f["day"], stamp(tomorrow));
    let hourly = f["hourly"].as_array().unwrap();
    assert_eq!(hourly.len(), 24);
    let (mut err, mut n) = (0.0, 0.0);
    for (h, v) in hourly.iter().enumerate() {
        let t = tomorrow + h as i64 * 3600;
        assert_eq!(v["start"], stamp(t));
        let want = load(t);
        err += ((v["energy_wh"].as_f64().unwrap() - want) / want).abs();
        n += 1.0;
    }
    let mape = 100.0 * err / n;
    assert!(mape < 5.0, "{mape} {f}");
    let b = &f["backtest"];
    assert_eq!(b["days"], 7);
    assert!(b["mape_pct"].as_f64().unwrap().is_finite(), "{f}");
    assert!(b["baseline_mape_pct"].as_f64().unwrap().is_finite(), "{f}");

    // No history for cell-2 or for a meter: said, not invented.
    for uri in [
        "/api/v1/analytics/groups/cell/cell-2/forecast",
        "/api/v1/analytics/meters/MTR00000004/forecast",
    ] {
        let r = fx.call(Method::GET, uri, Some(&viewer), None).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{uri}: {}", r.text());
        assert!(r.text().contains("too little history"), "{}", r.text());
    }
}

#[tokio::test]
async fn analytics_stay_within_the_callers_groups() {
    let fx = fixture().await;
    store_history(&fx).await;
    let r = fx
        .call(
            Method::GET,
            "/api/v1/analytics/groups/cell/cell-1/consumption",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let c1 = fx.login("cell1").await;
    for (uri, status) in [
        (
            "/api/v1/analytics/groups/cell/cell-1/consumption",
            StatusCode::OK,
        ),
        (
            "/api/v1/analytics/groups/cell/cell-1/forecast",
            StatusCode::OK,
        ),
        (
            "/api/v1/analytics/groups/cell/cell-2/consumption",
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/analytics/groups/cell/cell-2/forecast",
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/analytics/meters/MTR00000004/forecast",
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/analytics/groups/cell/cell-9/consumption",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let r = fx.call(Method::GET, uri, Some(&c1), None).await;
        assert_eq!(r.status, status, "{uri}: {}", r.text());
    }
    // A group that spans the caller's cell and another one (all meters here are in
    // region=r1) sums meters it may not see.
    let admin = fx.login("admin").await;
    for i in 1..=6 {
        let r = fx
            .call(
                Method::PATCH,
                &format!("/api/v1/meters/MTR{i:08}"),
                Some(&admin),
                Some(serde_json::json!({"groups": {"cell": format!("cell-{}", (i - 1) / 3 + 1), "region": "r1"}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let r = fx
        .call(
            Method::GET,
            "/api/v1/analytics/groups/region/r1/consumption",
            Some(&c1),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = fx
        .call(
            Method::GET,
            "/api/v1/analytics/groups/region/r1/consumption",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}
