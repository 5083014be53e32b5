//! WorkOS list cursors through the real server: every combination of `before`, `after`,
//! `order` and `limit` on a user with 25 factors, against the expected pages; and every
//! walk an SDK's auto-pagination makes ends, showing each factor once, in order.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::support::*;

const USER: &str = "user_01HPAGINATION0000000000000";
const FACTORS: usize = 25;
/// Every limit up to one past the factor count (larger ones all behave alike) and the
/// maximum, 100. On PostgreSQL, whose only part in this is the keyset scan (covered on its
/// own by the storage conformance suite), the limits at the edges: a full pass there costs
/// minutes of a shared CI machine.
fn limits() -> Vec<usize> {
    if on_postgres() {
        vec![1, 2, 3, 12, 13, 24, 25, 26, 100]
    } else {
        (1..=FACTORS + 1).chain([100]).collect()
    }
}

/// 25 factors of all three kinds for one user, oldest first (one millisecond apart, so
/// id order is creation order), plus another user's factor in between.
async fn user_with_factors(app: &TestApp) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..FACTORS {
        let body = match i % 3 {
            0 => {
                json!({"type": "totp", "totp_issuer": "A", "totp_user": format!("u{i}"), "user_id": USER})
            }
            1 => json!({"type": "generic_otp", "user_id": USER}),
            _ => json!({"type": "sms", "phone_number": "+14155552671", "user_id": USER}),
        };
        ids.push(app.enroll(body).await["id"].as_str().unwrap().to_owned());
        app.clock.advance(time::Duration::milliseconds(1));
        if i == 12 {
            app.enroll(json!({"type": "generic_otp", "user_id": "user_someone_else"}))
                .await;
        }
    }
    ids
}

/// The expected page, by index into `in_order` (the factors in the requested order):
/// the range strictly between the cursors; its first `limit` items, or its last `limit`
/// for `before` alone; `after` only if more follow in the range, `before` only if
/// earlier items exist.
fn expected(
    in_order: &[String],
    before: Option<usize>,
    after: Option<usize>,
    limit: usize,
) -> Value {
    let lo = after.map_or(0, |a| a + 1);
    let hi = before.unwrap_or(in_order.len());
    let range = if lo < hi { &in_order[lo..hi] } else { &[][..] };
    let more = range.len() > limit;
    let backwards = before.is_some() && after.is_none();
    let page = if backwards {
        &range[range.len().saturating_sub(limit)..]
    } else {
        &range[..limit.min(range.len())]
    };
    let (first, last) = (page.first(), page.last());
    let (b, a) = if backwards {
        (first.filter(|_| more), last)
    } else {
        (first.filter(|_| after.is_some()), last.filter(|_| more))
    };
    json!({"data": page, "list_metadata": {"before": b, "after": a}})
}

fn query(order: &str, before: Option<&String>, after: Option<&String>, limit: usize) -> String {
    let mut q = format!("/user_management/users/{USER}/auth_factors?order={order}&limit={limit}");
    if let Some(b) = before {
        q.push_str(&format!("&before={b}"));
    }
    if let Some(a) = after {
        q.push_str(&format!("&after={a}"));
    }
    q
}

/// The page's ids and cursors, in the shape of [`expected`].
fn observed(r: &Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<&Value> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["id"])
        .collect();
    json!({"data": ids, "list_metadata": r.body["list_metadata"]})
}

fn orders(oldest_first: &[String]) -> [(&'static str, Vec<String>); 2] {
    let mut newest_first = oldest_first.to_vec();
    newest_first.reverse();
    [("asc", oldest_first.to_vec()), ("desc", newest_first)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cursor_combination_gives_the_expected_page() {
    let app = Arc::new(spawn_app().await);
    let created = user_with_factors(&app).await;
    let limits = limits();
    let cursors: Vec<Option<usize>> = std::iter::once(None)
        .chain((0..FACTORS).map(Some))
        .collect();
    let mut cases = Vec::new();
    for (order, in_order) in orders(&created) {
        let in_order = Arc::new(in_order);
        for &b in &cursors {
            for &a in &cursors {
                for &limit in &limits {
                    cases.push((order, in_order.clone(), b, a, limit));
                }
            }
        }
    }
    assert_eq!(cases.len(), 2 * 26 * 26 * limits.len());
    // A few workers share the cases; each request is checked where it is answered.
    let workers = 4;
    let mut set = JoinSet::new();
    for w in 0..workers {
        let app = app.clone();
        let mine: Vec<_> = cases.iter().skip(w).step_by(workers).cloned().collect();
        set.spawn(async move {
            for (order, in_order, b, a, limit) in mine {
                let path = query(
                    order,
                    b.map(|i| &in_order[i]),
                    a.map(|i| &in_order[i]),
                    limit,
                );
                let r = app.call("GET", &path, None).await;
                assert_eq!(observed(&r), expected(&in_order, b, a, limit), "{path}");
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
}

#[tokio::test]
async fn auto_pagination_walks_end_with_each_factor_once_in_order() {
    let app = spawn_app().await;
    let created = user_with_factors(&app).await;
    for (order, in_order) in orders(&created) {
        for limit in limits() {
            // Go and Ruby v10 keep the caller's `before` and add `after`; Python and Node
            // follow `after` alone. From every starting `before`, both walks end.
            for start in std::iter::once(None).chain((0..FACTORS).map(Some)) {
                for keep_before in [true, false] {
                    let before = start.map(|i| in_order[i].clone());
                    let mut after: Option<String> = None;
                    let mut seen: Vec<String> = Vec::new();
                    let mut pages = 0;
                    loop {
                        pages += 1;
                        assert!(
                            pages <= FACTORS + 1,
                            "walk {order} {limit} {start:?} never ends"
                        );
                        let b = if keep_before || after.is_none() {
                            before.as_ref()
                        } else {
                            None
                        };
                        let r = app
                            .call("GET", &query(order, b, after.as_ref(), limit), None)
                            .await;
                        let page = observed(&r);
                        seen.extend(
                            page["data"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|v| v.as_str().unwrap().to_owned()),
                        );
                        match page["list_metadata"]["after"].as_str() {
                            Some(next) => after = Some(next.to_owned()),
                            None => break,
                        }
                    }
                    // Each factor once, in order: the page before the start, then (when
                    // `before` is dropped) everything after that page.
                    let from = start.map_or(0, |s| s.saturating_sub(limit));
                    let to = match start {
                        // Nothing before the first factor: an empty page, no cursor to follow.
                        Some(s) if keep_before || s == 0 => s,
                        _ => FACTORS,
                    };
                    assert_eq!(seen, in_order[from..to], "walk {order} {limit} {start:?}");
                }
            }
        }
    }
}
