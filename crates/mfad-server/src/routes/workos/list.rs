//! The query every WorkOS list reads the same way: `limit` (1–100, default 10), `order`
//! (`desc` default, `asc`, `normal` = `asc`) and the `before` / `after` cursors that
//! [`mfad_core::pagination`] turns into a page; unknown parameters are refused, as
//! production does. The page's envelope is [`super::wire::list`].

use mfad_core::model::Order;

use crate::error::WireFieldError;
use crate::extract::Fields;

/// A list request's paging, in the domain's terms.
#[derive(Debug)]
pub(super) struct ListPage<I> {
    pub limit: u32,
    pub order: Order,
    pub before: Option<I>,
    pub after: Option<I>,
}

/// A query value, unless it is empty or the `null` / `undefined` that SDKs write for an
/// unset argument.
pub(super) fn set(v: Option<&String>) -> Option<&str> {
    v.map(String::as_str)
        .filter(|v| !v.is_empty() && *v != "null" && *v != "undefined")
}

/// Records `[unknown]` for each parameter not in `known`.
pub(super) fn refuse_unknown<'k>(
    keys: impl IntoIterator<Item = &'k String>,
    known: &[&str],
    fields: &mut Fields,
) {
    for k in keys {
        if !known.contains(&k.as_str()) {
            fields.push(WireFieldError::new(
                k,
                "unknown",
                format!("property {k} should not exist"),
            ));
        }
    }
}

/// Reads `limit`, `order`, `before` and `after` from `present` (a parameter's value,
/// through [`set`]); cursors are ids that `id` parses, `what` names them in the error.
pub(super) fn list_page<'q, I>(
    present: impl Fn(&str) -> Option<&'q str>,
    id: impl Fn(&str) -> Option<I>,
    what: &str,
    fields: &mut Fields,
) -> ListPage<I> {
    let limit = match present("limit") {
        None => 10,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                fields.push(WireFieldError::new(
                    "limit",
                    "invalid",
                    "limit must be an integer between 1 and 100",
                ));
                10
            }
        },
    };
    let order = match present("order") {
        None | Some("desc") => Order::Desc,
        Some("asc" | "normal") => Order::Asc,
        Some(_) => {
            fields.push(WireFieldError::new(
                "order",
                "invalid",
                "order must be one of: asc, desc, normal",
            ));
            Order::Desc
        }
    };
    let mut cursor = |k: &str| parsed(&present, k, &id, what, fields);
    let before = cursor("before");
    let after = cursor("after");
    ListPage {
        limit,
        order,
        before,
        after,
    }
}

/// Parameter `k` read by `parse`; `[invalid]` "`k` must be `what`" if it does not parse.
pub(super) fn parsed<'q, T>(
    present: impl Fn(&str) -> Option<&'q str>,
    k: &str,
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
    fields: &mut Fields,
) -> Option<T> {
    let v = parse(present(k)?);
    if v.is_none() {
        fields.push(WireFieldError::new(
            k,
            "invalid",
            format!("{k} must be {what}"),
        ));
    }
    v
}
