//! Commands an operator sends, each over an open management session: relay disconnect and
//! reconnect with the state read back, clock sync with the drift reported, firmware upgrade
//! that resumes from the meter's first missing block, and key rotation by key transfer. Every
//! command is audited (who, what, when, result) by the job engine.

use std::sync::Arc;

use dlms::axdr::Data;
use dlms::cosem::image_transfer::{
    image_activate_params, image_block_transfer_params, image_transfer_initiate_params,
    image_verify_params, missing_blocks, transferred_blocks_from_data,
};
use dlms::security::wrap_key;
use dlms::xdlms::ActionResult;
use dlms::{AttributeDescriptor, DateTime, MethodDescriptor, ObisCode};
use rand::RngCore;
use serde_json::{json, Value};

use crate::session::{date_of, integer, unix_now, Env, MeterSession, SessionError};

const DISCONNECT: ObisCode = ObisCode::new(0, 0, 96, 3, 10, 255);
const CLOCK: ObisCode = ObisCode::new(0, 0, 1, 0, 0, 255);
const IMAGE_TRANSFER: ObisCode = ObisCode::new(0, 0, 44, 0, 0, 255);
const FIRMWARE: ObisCode = ObisCode::new(1, 0, 0, 2, 0, 255);
const SECURITY_SETUP: ObisCode = ObisCode::new(0, 0, 43, 0, 0, 255);

fn attr(class_id: u16, instance: ObisCode, attribute: i8) -> AttributeDescriptor {
    AttributeDescriptor {
        class_id,
        instance,
        attribute,
    }
}

async fn act(
    s: &mut MeterSession,
    class_id: u16,
    instance: ObisCode,
    method: i8,
    params: Data,
) -> Result<(), SessionError> {
    let m = MethodDescriptor {
        class_id,
        instance,
        method,
    };
    let (r, _) = s.connection()?.action(m, Some(params)).await?;
    if r == ActionResult::Success {
        Ok(())
    } else {
        Err(SessionError::Unexpected(format!(
            "{instance} method {method}: {r:?}"
        )))
    }
}

/// Opens (`connect = false`) or closes the relay, then reads its output state back.
pub async fn relay(s: &mut MeterSession, connect: bool) -> Result<Value, SessionError> {
    act(
        s,
        70,
        DISCONNECT,
        if connect { 2 } else { 1 },
        Data::Integer(0),
    )
    .await?;
    let state = s.get(attr(70, DISCONNECT, 2), None).await?;
    let connected = matches!(state, Data::Boolean(true));
    if connected != connect {
        return Err(SessionError::Unexpected(format!(
            "relay reads {} after the command",
            if connected {
                "connected"
            } else {
                "disconnected"
            }
        )));
    }
    Ok(json!({ "relay_connected": connected }))
}

/// Sets the meter's clock to ours and reports how far it was off (meter minus head-end).
pub async fn clock_sync(s: &mut MeterSession) -> Result<Value, SessionError> {
    let before = s.clock().await?;
    let now = unix_now();
    let drift = before - now;
    let value = Data::OctetString(DateTime::from_unix(now, 0, 0).to_octets());
    let r = s.connection()?.set(attr(8, CLOCK, 2), None, value).await?;
    if r != dlms::xdlms::DataAccessResult::Success {
        return Err(SessionError::Object {
            obis: CLOCK,
            attribute: 2,
            result: r,
        });
    }
    let after = s.clock().await?;
    Ok(json!({ "drift_s": drift, "residual_s": after - unix_now() }))
}

/// Transfers `image` (resuming from the first block the meter lacks), verifies and activates
/// it, and reads the running firmware version back.
pub async fn firmware_upgrade(
    s: &mut MeterSession,
    identifier: &str,
    image: &[u8],
) -> Result<Value, SessionError> {
    let size = u32::try_from(image.len())
        .map_err(|_| SessionError::Unexpected("image larger than 4 GiB".into()))?;
    let block_size = s
        .get(attr(18, IMAGE_TRANSFER, 2), None)
        .await
        .ok()
        .and_then(|d| integer(&d))
        .and_then(|v| usize::try_from(v).ok())
        .filter(|&v| v > 0)
        .ok_or_else(|| SessionError::Unexpected("image block size".into()))?;
    act(
        s,
        18,
        IMAGE_TRANSFER,
        1,
        image_transfer_initiate_params(identifier.as_bytes(), size),
    )
    .await?;
    // Re-initiating with the same identifier keeps what the meter already has: send only
    // the blocks it lacks.
    let count = u32::try_from(image.len().div_ceil(block_size)).unwrap_or(u32::MAX);
    let have = s.get(attr(18, IMAGE_TRANSFER, 3), None).await?;
    let missing = transferred_blocks_from_data(&have)
        .map(|bits| missing_blocks(&bits, count))
        .unwrap_or_else(|_| (0..count).collect());
    let skipped = count as usize - missing.len();
    for n in &missing {
        let start = (*n as usize).saturating_mul(block_size);
        let end = (start + block_size).min(image.len());
        let block = image.get(start..end).unwrap_or_default();
        act(
            s,
            18,
            IMAGE_TRANSFER,
            2,
            image_block_transfer_params(*n, block),
        )
        .await?;
    }
    act(s, 18, IMAGE_TRANSFER, 3, image_verify_params()).await?;
    act(s, 18, IMAGE_TRANSFER, 4, image_activate_params()).await?;
    let version = s.get(attr(1, FIRMWARE, 2), None).await?;
    let version = match version {
        Data::VisibleString(v) | Data::OctetString(v) => String::from_utf8_lossy(&v).into_owned(),
        other => format!("{other:?}"),
    };
    Ok(json!({
        "blocks": count,
        "blocks_sent": missing.len(),
        "blocks_already_there": skipped,
        "firmware": version,
    }))
}

/// New random EK and AK, wrapped with the meter's master key and transferred; the registry
/// records them once the meter has accepted them. The caller proves them with a new session.
pub async fn rotate_keys(
    env: &Arc<Env>,
    s: &mut MeterSession,
) -> Result<([u8; 16], [u8; 16]), SessionError> {
    let keys = env.registry.open_keys(&s.meter)?;
    let mut ek = [0u8; 16];
    let mut ak = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut ek);
    rand::thread_rng().fill_bytes(&mut ak);
    let params = Data::Array(vec![
        Data::Structure(vec![
            Data::Enum(0),
            Data::OctetString(wrap_key(&keys.kek, &ek).to_vec()),
        ]),
        Data::Structure(vec![
            Data::Enum(2),
            Data::OctetString(wrap_key(&keys.kek, &ak).to_vec()),
        ]),
    ]);
    act(s, 64, SECURITY_SETUP, 2, params).await?;
    env.registry.replace_keys(&s.meter.id, &ek, &ak).await?;
    Ok((ek, ak))
}

const ACTIVITY_CALENDAR: ObisCode = ObisCode::new(0, 0, 13, 0, 0, 255);

async fn set(
    s: &mut MeterSession,
    class_id: u16,
    instance: ObisCode,
    attribute: i8,
    value: Data,
) -> Result<(), SessionError> {
    let r = s
        .connection()?
        .set(attr(class_id, instance, attribute), None, value)
        .await?;
    if r == dlms::xdlms::DataAccessResult::Success {
        Ok(())
    } else {
        Err(SessionError::Object {
            obis: instance,
            attribute,
            result: r,
        })
    }
}

/// Writes a two-rate calendar as the passive calendar and activates it now (read back as the
/// active calendar's name) or at `activate_at`.
pub async fn set_calendar(
    s: &mut MeterSession,
    name: &str,
    day_from_min: u16,
    day_to_min: u16,
    activate_at: Option<i64>,
) -> Result<Value, SessionError> {
    use dlms::cosem::activity_calendar as ac;
    let c = ac::two_rate(name.as_bytes(), day_from_min, day_to_min);
    let ln = ACTIVITY_CALENDAR;
    set(
        s,
        20,
        ln,
        ac::CALENDAR_NAME_PASSIVE,
        Data::OctetString(c.name.clone()),
    )
    .await?;
    set(
        s,
        20,
        ln,
        ac::SEASON_PROFILE_PASSIVE,
        ac::season_profile_to_data(&c.seasons),
    )
    .await?;
    let weeks = ac::week_profile_table_to_data(&c.week_profiles);
    set(s, 20, ln, ac::WEEK_PROFILE_TABLE_PASSIVE, weeks).await?;
    let days = ac::day_profile_table_to_data(&c.day_profiles);
    set(s, 20, ln, ac::DAY_PROFILE_TABLE_PASSIVE, days).await?;
    match activate_at {
        Some(t) => {
            let at = Data::OctetString(DateTime::from_unix(t, 0, 0).to_octets());
            set(s, 20, ln, ac::ACTIVATE_PASSIVE_CALENDAR_TIME, at).await?;
            Ok(json!({ "passive": name, "activate_at": t }))
        }
        None => {
            act(
                s,
                20,
                ln,
                ac::ACTIVATE_PASSIVE_CALENDAR,
                ac::activate_passive_calendar_params(),
            )
            .await?;
            let active = s.get(attr(20, ln, ac::CALENDAR_NAME_ACTIVE), None).await?;
            let active = match active {
                Data::OctetString(v) => String::from_utf8_lossy(&v).into_owned(),
                other => format!("{other:?}"),
            };
            if active != name {
                return Err(SessionError::Unexpected(format!(
                    "the active calendar is {active:?} after activation"
                )));
            }
            Ok(json!({ "active": active }))
        }
    }
}

/// The meter's clock and the drift, for reports.
pub async fn drift(s: &mut MeterSession) -> Result<i64, SessionError> {
    let d = s.get(attr(8, CLOCK, 2), None).await?;
    date_of(&d)
        .map(|t| t - unix_now())
        .ok_or_else(|| SessionError::Unexpected("clock".into()))
}
