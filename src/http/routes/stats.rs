//! `GET /admin/stats/timeseries`: calls per interval over the last hour, day or week, for
//! charts (the console's among them).

use axum::{
    Json,
    extract::{RawQuery, State},
};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    domain::{CallBucket, now_micros},
    http::{
        AppState,
        error::{ApiError, ErrorBody},
        query::QueryParams,
        responses::{QueryErrors, Refusals},
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(call_timeseries))
}

/// The windows a series covers: (name, interval width, number of intervals).
const WINDOWS: [(&str, i64, i64); 3] = [
    ("hour", 60, 60),
    ("day", 30 * 60, 48),
    ("week", 2 * 60 * 60, 84),
];

#[derive(Serialize, utoipa::ToSchema)]
struct CallTimeseries {
    /// `hour`, `day` or `week`.
    window: &'static str,
    /// The width of each interval.
    bucket_seconds: i64,
    /// The first interval's start; the last interval holds the time of the answer.
    since: DateTime<Utc>,
    /// The tool the series counts (absent: every tool).
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_id: Option<Uuid>,
    /// Every interval of the window, earliest first, those without calls included.
    buckets: Vec<CallBucket>,
}

/// `?window=hour|day|week&tool=<name or id>`: calls, errors, timeouts and duration
/// percentiles per interval (hour: 60 × 1 min, day: 48 × 30 min, week: 84 × 2 h).
#[utoipa::path(get, path = "/admin/stats/timeseries", tag = "admin",
    params(
        ("window" = Option<String>, Query, description = "hour (default), day or week"),
        ("tool" = Option<String>, Query, description = "A tool's name or id; every tool when absent"),
    ),
    responses(
        (status = 200, description = "The series, one entry per interval", body = CallTimeseries),
        (status = 404, description = "No tool of that name", body = ErrorBody),
        QueryErrors,
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn call_timeseries(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<CallTimeseries>, ApiError> {
    let params = QueryParams::parse(query.as_deref(), &["window", "tool"])?;
    let asked = params.text("window").unwrap_or_else(|| "hour".into());
    let (window, width, count) = WINDOWS
        .into_iter()
        .find(|(name, _, _)| *name == asked)
        .ok_or_else(|| ApiError::validation("window", "window must be hour, day or week"))?;
    let width = Duration::seconds(width);
    let since = interval_start(now_micros(), width) - width * (count as i32 - 1);
    let tool = params.text("tool").filter(|t| !t.is_empty());
    let (tool_id, buckets) = state
        .registry
        .call_series(tool.as_deref(), since, width, count)
        .await?;
    Ok(Json(CallTimeseries {
        window,
        bucket_seconds: width.num_seconds(),
        since,
        tool_id,
        buckets,
    }))
}

/// The start of the interval of `width` (counted from the Unix epoch) that holds `time`.
fn interval_start(time: DateTime<Utc>, width: Duration) -> DateTime<Utc> {
    let width_s = width.num_seconds().max(1);
    let seconds = time.timestamp().div_euclid(width_s) * width_s;
    DateTime::from_timestamp(seconds, 0).unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_start_on_multiples_of_their_width() {
        let time = DateTime::parse_from_rfc3339("2026-03-04T10:47:31.250Z")
            .unwrap()
            .with_timezone(&Utc);
        let start = |seconds| interval_start(time, Duration::seconds(seconds)).to_rfc3339();
        assert_eq!(start(60), "2026-03-04T10:47:00+00:00");
        assert_eq!(start(1800), "2026-03-04T10:30:00+00:00");
        assert_eq!(start(7200), "2026-03-04T10:00:00+00:00");
    }
}
