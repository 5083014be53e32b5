//! WorkOS list cursors over a keyset scan, as two pure steps: [`plan`] turns a request's
//! `order`, `before`, `after` and `limit` into one store scan, and [`Plan::page`] turns
//! the rows it returned into a page with `list_metadata` cursors.
//!
//! The rule, in the requested order: `after` = only items strictly after that id,
//! `before` = only items strictly before it, both = the range strictly between them.
//! A page is the first `limit` items of that range, except for `before` alone, which
//! takes the last `limit` (walking back). Cursors follow WorkOS: `after` is set only
//! when more items follow in the range (so an SDK that keeps following it stops),
//! `before` only when earlier items exist. An empty range is an empty page with null
//! cursors. The newest WorkOS SDKs page by keeping the caller's `before` and adding
//! `after`, so honouring both is what lets their iterators end.

use crate::ids::{FactorId, TenantId, UserId};
use crate::model::{Order, Page};
use crate::store::FactorScan;

/// One scan of the store and how to shape its rows into a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<'a, I = FactorId> {
    /// Scan direction of the store query.
    pub ascending: bool,
    /// Exclusive start of the scan.
    pub start_after: Option<&'a I>,
    /// Exclusive far end of the range in scan direction: rows at or past it are dropped.
    stop_at: Option<&'a I>,
    /// The scan runs against the requested order (`before` alone): rows are reversed.
    backwards: bool,
    /// The page size.
    limit: u32,
}

/// The scan that answers a list request. `limit` is the page size (validated by the caller).
pub fn plan<'a, I>(
    order: Order,
    before: Option<&'a I>,
    after: Option<&'a I>,
    limit: u32,
) -> Plan<'a, I> {
    let asc = order == Order::Asc;
    match (before, after) {
        (Some(before), None) => Plan {
            ascending: !asc,
            start_after: Some(before),
            stop_at: None,
            backwards: true,
            limit,
        },
        (before, after) => Plan {
            ascending: asc,
            start_after: after,
            stop_at: before,
            backwards: false,
            limit,
        },
    }
}

impl<'a> Plan<'a, FactorId> {
    /// The store query: one row more than the page, to learn whether more follow.
    pub fn scan(&self, tenant_id: &'a TenantId, user_id: &'a UserId) -> FactorScan<'a> {
        FactorScan {
            tenant_id,
            user_id,
            ascending: self.ascending,
            start_after: self.start_after,
            limit: self.limit.saturating_add(1),
        }
    }
}

impl<I: Ord + std::fmt::Display> Plan<'_, I> {
    /// Shapes the rows the scan returned (in scan order) into the page.
    pub fn page<T>(&self, rows: Vec<T>, id: impl Fn(&T) -> &I) -> Page<T> {
        let in_range = |row: &T| match self.stop_at {
            None => true,
            Some(stop) if self.ascending => id(row) < stop,
            Some(stop) => id(row) > stop,
        };
        // Rows come in scan order, so the first one out of range ends the range.
        let mut data: Vec<T> = rows.into_iter().take_while(in_range).collect();
        let more = data.len() > self.limit as usize;
        data.truncate(self.limit as usize);
        if self.backwards {
            data.reverse();
        }
        let cursor = |row: Option<&T>| row.map(|r| id(r).to_string());
        let (before, after) = if self.backwards {
            (cursor(data.first().filter(|_| more)), cursor(data.last()))
        } else {
            (
                cursor(data.first().filter(|_| self.start_after.is_some())),
                cursor(data.last().filter(|_| more)),
            )
        };
        Page {
            data,
            before,
            after,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// Ids whose string order is their numeric order.
    fn fid(n: u32) -> FactorId {
        FactorId::from_trusted(format!("auth_factor_{n:026}"))
    }

    fn position(cursor: &str) -> u32 {
        cursor
            .trim_start_matches(FactorId::PREFIX)
            .parse()
            .unwrap_or(u32::MAX)
    }

    /// The `Store` contract of `scan_user_factors`, over a set of ids.
    fn scan(set: &BTreeSet<u32>, plan: &Plan<'_>) -> Vec<FactorId> {
        let ids = set.iter().map(|&n| fid(n));
        let rows: Vec<FactorId> = if plan.ascending {
            ids.filter(|f| plan.start_after.is_none_or(|s| f > s))
                .collect()
        } else {
            ids.rev()
                .filter(|f| plan.start_after.is_none_or(|s| f < s))
                .collect()
        };
        let fetch = (plan.limit + 1) as usize;
        rows.into_iter().take(fetch).collect()
    }

    fn list(
        set: &BTreeSet<u32>,
        order: Order,
        b: Option<u32>,
        a: Option<u32>,
        limit: u32,
    ) -> Page<FactorId> {
        let (b, a) = (b.map(fid), a.map(fid));
        let p = plan(order, b.as_ref(), a.as_ref(), limit);
        p.page(scan(set, &p), |f| f)
    }

    /// The expected page, written from the rule in the module doc, by positions in the
    /// requested order rather than by scans.
    fn model(
        set: &BTreeSet<u32>,
        order: Order,
        b: Option<u32>,
        a: Option<u32>,
        limit: u32,
    ) -> Page<FactorId> {
        let rank = |n: u32| {
            if order == Order::Asc {
                i64::from(n)
            } else {
                -i64::from(n)
            }
        };
        let mut range: Vec<u32> = set
            .iter()
            .copied()
            .filter(|&n| a.is_none_or(|a| rank(n) > rank(a)) && b.is_none_or(|b| rank(n) < rank(b)))
            .collect();
        range.sort_by_key(|&n| rank(n));
        let limit = limit as usize;
        let more = range.len() > limit;
        let backwards = b.is_some() && a.is_none();
        let data: Vec<u32> = if backwards {
            range[range.len().saturating_sub(limit)..].to_vec()
        } else {
            range.into_iter().take(limit).collect()
        };
        let first = data.first().map(|&n| fid(n).to_string());
        let last = data.last().map(|&n| fid(n).to_string());
        let (before, after) = match (backwards, a.is_some()) {
            (true, _) => (first.filter(|_| more), last),
            (false, from_cursor) => (first.filter(|_| from_cursor), last.filter(|_| more)),
        };
        Page {
            data: data.into_iter().map(fid).collect(),
            before,
            after,
        }
    }

    fn order() -> impl Strategy<Value = Order> {
        prop_oneof![Just(Order::Asc), Just(Order::Desc)]
    }

    /// Up to 25 factors among positions 0..60; cursors anywhere in 0..61, so they may
    /// name a factor or a gap (a deleted factor, another user's).
    fn case() -> impl Strategy<Value = (BTreeSet<u32>, Order, Option<u32>, Option<u32>, u32)> {
        (
            proptest::collection::btree_set(0u32..60, 0..=25),
            order(),
            proptest::option::of(0u32..61),
            proptest::option::of(0u32..61),
            1u32..=30,
        )
    }

    proptest! {
        #[test]
        fn pages_match_the_model((set, order, b, a, limit) in case()) {
            prop_assert_eq!(list(&set, order, b, a, limit), model(&set, order, b, a, limit));
        }

        /// The newest SDKs keep `before` and follow `after`; older ones drop `before`.
        /// Either way the walk ends and shows each item once, in order: the first page,
        /// then everything after it (up to `before` while it is kept).
        #[test]
        fn following_after_terminates_in_order((set, order, b, a, limit) in case(), keep_before in any::<bool>()) {
            let first = model(&set, order, b, a, limit);
            let mut expected = first.data.clone();
            if let Some(next) = first.after.as_deref() {
                let kept = b.filter(|_| keep_before);
                expected.extend(model(&set, order, kept, Some(position(next)), 100).data);
            }
            let (mut before, mut after) = (b, a);
            let mut seen: Vec<FactorId> = Vec::new();
            let mut ended = false;
            for _ in 0..=set.len() {
                let page = list(&set, order, before, after, limit);
                seen.extend(page.data);
                let Some(next) = page.after else {
                    ended = true;
                    break;
                };
                after = Some(position(&next));
                before = before.filter(|_| keep_before);
            }
            prop_assert!(ended, "the walk did not end");
            prop_assert_eq!(seen, expected);
        }

        /// Walking back with `before` ends too, and shows every earlier item once.
        #[test]
        fn following_before_terminates((set, order, _b, a, limit) in case()) {
            let Some(start) = a else { return Ok(()) };
            let mut seen: Vec<FactorId> = Vec::new();
            let mut before = start;
            let mut ended = false;
            for _ in 0..=set.len() {
                let page = list(&set, order, Some(before), None, limit);
                seen.splice(0..0, page.data);
                let Some(prev) = page.before else {
                    ended = true;
                    break;
                };
                before = position(&prev);
            }
            prop_assert!(ended, "the walk did not end");
            prop_assert_eq!(seen, model(&set, order, Some(start), None, 100).data);
        }
    }

    #[test]
    fn the_reported_hang_ends() {
        // `after` and `before` both given: the range between them, then null cursors.
        let set: BTreeSet<u32> = (0..25).collect();
        let page = list(&set, Order::Asc, Some(10), Some(3), 10);
        let got: Vec<_> = page.data.iter().map(FactorId::to_string).collect();
        let want: Vec<_> = (4..10).map(|n| fid(n).to_string()).collect();
        assert_eq!(got, want);
        assert_eq!(page.after, None);
        let empty = list(&set, Order::Asc, Some(3), Some(10), 10);
        assert_eq!(
            (empty.data.len(), empty.before, empty.after),
            (0, None, None)
        );
    }
}
