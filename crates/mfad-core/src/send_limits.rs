//! Send limits: the SMS-pumping defence. Every code mfad texts or emails is admitted here
//! first, through one entry point, `Service::deliver` (service/delivery.rs), whichever API
//! asked for it.
//!
//! What a send must pass (the defaults are the `MFAD_SMS_*` settings, see docs/SECURITY.md):
//!
//! | limit | scope | default |
//! |---|---|---|
//! | cooldown | one number or address | 30 s |
//! | per hour / per day | one number or address | 5 / 10 |
//! | SMS per hour | one tenant | 1,000 |
//! | SMS per hour | one prefix (country code + next 3 digits) in a tenant | 100 |
//! | distinct numbers per day | one end user acting with a JWT | 3 |
//! | country allow / deny lists | deployment, narrowed per tenant | none |
//!
//! Counts are kept per tenant, so one tenant's traffic never uses up another's limits.
//! Admission is one store operation ([`Store::admit_send`]): the history is read and the
//! send recorded under a per-tenant lock, so a burst split across nodes cannot exceed a
//! limit. A refused send is not recorded; an admitted send whose delivery then fails (or
//! that a later check refuses) is released, so nothing is charged for a message not sent.
//! Destinations are stored as keyed digests, never in clear.

use std::str::FromStr;

use data_encoding::HEXLOWER;
use time::{Duration, OffsetDateTime};

use crate::error::CoreError;
use crate::events::{EventKind, Failure, Subject};
use crate::ids::{TenantId, UserId};
use crate::model::{Factor, FactorDetails};
use crate::phone::PhoneNumber;
use crate::service::Service;
use crate::store::Store;

/// Digits after the country code that make up a prefix (a number range, as premium-rate
/// ranges are allotted).
const PREFIX_DIGITS: usize = 3;
const HOUR: Duration = Duration::hours(1);
const DAY: Duration = Duration::days(1);

/// The send-limit policy of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendLimits {
    /// Least time between two sends to one number or address.
    pub cooldown: Duration,
    /// Most sends to one number or address per hour.
    pub per_destination_hour: u32,
    /// Most sends to one number or address per day.
    pub per_destination_day: u32,
    /// Most SMS one tenant sends per hour.
    pub per_tenant_hour: u32,
    /// Most SMS to one prefix (country code + 3 digits) per tenant and hour.
    pub per_prefix_hour: u32,
    /// Most distinct numbers one end user (JWT caller) may text per day.
    pub numbers_per_user_day: u32,
    /// Which countries may be texted.
    pub countries: CountryRules,
}

impl Default for SendLimits {
    fn default() -> Self {
        SendLimits {
            cooldown: Duration::seconds(30),
            per_destination_hour: 5,
            per_destination_day: 10,
            per_tenant_hour: 1000,
            per_prefix_hour: 100,
            numbers_per_user_day: 3,
            countries: CountryRules::default(),
        }
    }
}

/// Country allow and deny lists, as ISO 3166 alpha-2 codes (upper case). An empty allow
/// list allows every country not denied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountryRules {
    /// If not empty, only these.
    pub allowed: Vec<String>,
    /// Never these.
    pub denied: Vec<String>,
}

impl CountryRules {
    /// Parses comma-separated lists, checking each code against the phone-number library's
    /// regions. The error names the first unknown code.
    pub fn parse(allowed: &str, denied: &str) -> Result<CountryRules, String> {
        Ok(CountryRules {
            allowed: parse_countries(allowed)?,
            denied: parse_countries(denied)?,
        })
    }

    /// Whether a number of `region` (unknown: `None`) may be texted.
    pub fn permits(&self, region: Option<&str>) -> bool {
        match region {
            Some(r) => {
                !self.denied.iter().any(|d| d == r)
                    && (self.allowed.is_empty() || self.allowed.iter().any(|a| a == r))
            }
            None => self.allowed.is_empty(),
        }
    }

    /// Whether there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty() && self.denied.is_empty()
    }
}

fn parse_countries(list: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for code in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let upper = code.to_ascii_uppercase();
        if upper.len() != 2 || phonenumber::country::Id::from_str(&upper).is_err() {
            return Err(format!("{code:?} is not an ISO 3166 alpha-2 country code"));
        }
        if !out.contains(&upper) {
            out.push(upper);
        }
    }
    Ok(out)
}

/// Which limit refused a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendLimit {
    /// Too soon after the last send to this destination.
    Cooldown,
    /// Too many sends to this destination this hour.
    DestinationHour,
    /// Too many sends to this destination today.
    DestinationDay,
    /// Too many SMS from this tenant this hour.
    TenantHour,
    /// Too many SMS to this number range this hour.
    PrefixHour,
    /// This end user has texted too many distinct numbers today.
    UserNumbersDay,
}

impl SendLimit {
    /// A sentence for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            SendLimit::Cooldown => "a code was sent to this destination moments ago",
            SendLimit::DestinationHour => "too many codes were sent to this destination this hour",
            SendLimit::DestinationDay => "too many codes were sent to this destination today",
            SendLimit::TenantHour => "too many text messages were sent for this tenant this hour",
            SendLimit::PrefixHour => {
                "too many text messages were sent to this number range this hour"
            }
            SendLimit::UserNumbersDay => "this user has sent codes to too many numbers today",
        }
    }
}

/// How a code travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A text message.
    Sms,
    /// An email.
    Email,
}

impl Channel {
    /// Storage encoding.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
        }
    }
}

/// Where a code goes.
#[derive(Debug, Clone, Copy)]
pub enum Destination<'a> {
    /// A phone.
    Sms(&'a PhoneNumber),
    /// A mailbox (normalised address).
    Email(&'a str),
}

impl<'a> Destination<'a> {
    /// Where codes for an SMS or email factor go.
    pub fn of(factor: &'a Factor) -> Option<Self> {
        match &factor.details {
            FactorDetails::Sms { phone } => Some(Destination::Sms(phone)),
            FactorDetails::Email { address } => Some(Destination::Email(address)),
            _ => None,
        }
    }

    fn channel(self) -> Channel {
        match self {
            Destination::Sms(_) => Channel::Sms,
            Destination::Email(_) => Channel::Email,
        }
    }

    /// For logs: the redacted number, or the address's domain.
    fn redacted(self) -> String {
        match self {
            Destination::Sms(p) => p.redacted(),
            Destination::Email(a) => format!("…@{}", a.rsplit_once('@').map_or("", |(_, d)| d)),
        }
    }
}

/// One send to admit.
#[derive(Debug, Clone, Copy)]
pub struct SendRequest<'a> {
    /// On whose account.
    pub tenant: &'a TenantId,
    /// Where to.
    pub to: Destination<'a>,
    /// The end user who asked for it with their own token (FusionAuth JWT routes); `None`
    /// when an application (API key) or a login in progress asked.
    pub end_user: Option<&'a UserId>,
}

/// A send as the store records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRecord {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// SMS or email.
    pub channel: Channel,
    /// Keyed digest of the number or address (hex).
    pub destination: String,
    /// Country code and the next 3 digits (SMS only).
    pub prefix: Option<String>,
    /// The end user who asked, on the JWT routes.
    pub end_user: Option<UserId>,
    /// When.
    pub at: OffsetDateTime,
}

/// Sends counted in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// How many.
    pub count: u32,
    /// The oldest of them.
    pub oldest: Option<OffsetDateTime>,
}

/// What the store knows about earlier sends, read under the tenant's lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendHistory {
    /// The tenant's own country rules (set with `mfad tenant sms-countries`).
    pub countries: Option<CountryRules>,
    /// Sends to this destination in the last day, newest first.
    pub destination: Vec<OffsetDateTime>,
    /// The tenant's sends on this channel in the last hour.
    pub tenant_hour: Window,
    /// The tenant's sends to this prefix in the last hour (SMS only).
    pub prefix_hour: Window,
    /// Distinct destinations the end user sent to on this channel in the last day, each with
    /// its latest send.
    pub user_destinations: Vec<(String, OffsetDateTime)>,
}

/// Why a send was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefusal {
    /// The number's country may not be texted (the tenant's rules).
    Country,
    /// A limit, and how long until it would admit the send.
    Limit(SendLimit, Duration),
}

/// An admitted send, to release if it is not delivered after all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendTicket(pub i64);

impl SendLimits {
    /// The policy: `Ok` if `record` may be sent given `h`, else the refusal.
    fn judge(&self, record: &SendRecord, h: &SendHistory) -> Result<(), (SendLimit, Duration)> {
        let now = record.at;
        let retry = |t: OffsetDateTime| t - now;
        if let Some(last) = h.destination.first()
            && *last + self.cooldown > now
        {
            return Err((SendLimit::Cooldown, retry(*last + self.cooldown)));
        }
        for (limit, window, max) in [
            (SendLimit::DestinationHour, HOUR, self.per_destination_hour),
            (SendLimit::DestinationDay, DAY, self.per_destination_day),
        ] {
            let recent: Vec<_> = h
                .destination
                .iter()
                .filter(|t| **t > now - window)
                .collect();
            // The send that frees a slot is the `max`-th newest one.
            if let Some(t) = recent.get(max.saturating_sub(1) as usize) {
                return Err((limit, retry(**t + window)));
            }
        }
        if record.channel == Channel::Sms {
            for (limit, w, max) in [
                (SendLimit::TenantHour, h.tenant_hour, self.per_tenant_hour),
                (SendLimit::PrefixHour, h.prefix_hour, self.per_prefix_hour),
            ] {
                if w.count >= max {
                    return Err((limit, retry(w.oldest.unwrap_or(now) + HOUR)));
                }
            }
            let known = h
                .user_destinations
                .iter()
                .any(|(d, _)| *d == record.destination);
            if record.end_user.is_some()
                && !known
                && h.user_destinations.len() >= self.numbers_per_user_day as usize
            {
                let first_out = h.user_destinations.iter().map(|(_, t)| *t).min();
                return Err((
                    SendLimit::UserNumbersDay,
                    retry(first_out.unwrap_or(now) + DAY),
                ));
            }
        }
        Ok(())
    }
}

/// The region (ISO alpha-2) and prefix of a number, from the phone-number library.
fn region_and_prefix(phone: &PhoneNumber) -> (Option<String>, String) {
    match phonenumber::parse(None, phone.as_str()) {
        Ok(p) => {
            let national = p.national().to_string();
            let head: String = national.chars().take(PREFIX_DIGITS).collect();
            (
                p.country().id().map(|id| id.as_ref().to_owned()),
                format!("+{}{head}", p.country().code()),
            )
        }
        Err(_) => (None, phone.as_str().chars().take(5).collect()),
    }
}

fn whole_seconds(d: Duration) -> u64 {
    // Rounded up, and at least 1: retrying at the hinted second must not be too early.
    let ms = d.whole_milliseconds().max(1);
    u64::try_from((ms + 999) / 1000).unwrap_or(1)
}

impl<S: Store> Service<S> {
    /// Sets the send-limit policy (default: [`SendLimits::default`]).
    pub fn with_send_limits(mut self, limits: SendLimits) -> Self {
        self.send_limits = limits;
        self
    }

    /// The send-limit policy in force.
    pub fn send_limits(&self) -> &SendLimits {
        &self.send_limits
    }

    /// Admits one send against the limits, recording it; `Service::deliver` (the one path
    /// every send takes) calls this before it stores or sends anything.
    pub(crate) async fn admit_send(&self, req: SendRequest<'_>) -> Result<SendTicket, CoreError> {
        let channel = req.to.channel();
        let (region, prefix, plain) = match req.to {
            Destination::Sms(p) => {
                let (region, prefix) = region_and_prefix(p);
                (region, Some(prefix), p.as_str())
            }
            Destination::Email(a) => (None, None, a),
        };
        if channel == Channel::Sms {
            self.deployment_permits(req, region.as_deref())?;
        }
        let mut context = b"send-destination\0".to_vec();
        context.extend_from_slice(req.tenant.as_str().as_bytes());
        let record = SendRecord {
            tenant_id: req.tenant.clone(),
            channel,
            destination: HEXLOWER.encode(&self.keyring.code_digest(&context, plain.as_bytes())?),
            prefix,
            end_user: req.end_user.cloned(),
            at: self.clock.now(),
        };
        let limits = &self.send_limits;
        let decide = |h: &SendHistory| {
            if channel == Channel::Sms
                && let Some(rules) = &h.countries
                && !rules.permits(region.as_deref())
            {
                return Err(SendRefusal::Country);
            }
            limits
                .judge(&record, h)
                .map_err(|(limit, wait)| SendRefusal::Limit(limit, wait))
        };
        let outcome = self.store.admit_send(&record, &decide).await?;
        if let Err(refusal) = &outcome {
            let failure = match refusal {
                SendRefusal::Country => Failure::new(
                    "country_not_allowed",
                    "Sends to this country are not allowed.",
                ),
                SendRefusal::Limit(..) => {
                    Failure::new("send_limit", "A send limit refused the send.")
                }
            };
            let subject = Subject::Send {
                user_id: req.end_user.cloned(),
                factor: None,
                destination: req.to.redacted(),
                failure,
            };
            self.record_refusal(req.tenant, EventKind::SendRefused, subject)
                .await?;
        }
        match outcome {
            Ok(ticket) => Ok(ticket),
            Err(SendRefusal::Country) => Err(self.country_refused(req, region)),
            Err(SendRefusal::Limit(limit, wait)) => {
                let retry_after_secs = whole_seconds(wait);
                tracing::warn!(
                    tenant = %req.tenant, to = %req.to.redacted(), ?limit, retry_after_secs,
                    "send refused by a send limit"
                );
                Err(CoreError::SendLimited {
                    limit,
                    retry_after_secs,
                })
            }
        }
    }

    fn deployment_permits(
        &self,
        req: SendRequest<'_>,
        region: Option<&str>,
    ) -> Result<(), CoreError> {
        if self.send_limits.countries.permits(region) {
            Ok(())
        } else {
            Err(self.country_refused(req, region.map(str::to_owned)))
        }
    }

    fn country_refused(&self, req: SendRequest<'_>, region: Option<String>) -> CoreError {
        tracing::warn!(
            tenant = %req.tenant, to = %req.to.redacted(), country = ?region,
            "send refused: country not allowed"
        );
        CoreError::SmsCountryNotAllowed { country: region }
    }

    /// Refuses a number whose country may not be texted, by the deployment's lists or the
    /// tenant's: enrollment calls this so a factor that could never receive a code is not
    /// created.
    pub async fn permit_country(
        &self,
        tenant: &TenantId,
        phone: &PhoneNumber,
    ) -> Result<(), CoreError> {
        let (region, _) = region_and_prefix(phone);
        let req = SendRequest {
            tenant,
            to: Destination::Sms(phone),
            end_user: None,
        };
        self.deployment_permits(req, region.as_deref())?;
        match self.store.sms_countries(tenant).await? {
            Some(rules) if !rules.permits(region.as_deref()) => {
                Err(self.country_refused(req, region))
            }
            _ => Ok(()),
        }
    }

    /// A tenant's own country rules (they narrow the deployment's, never widen them).
    pub async fn tenant_sms_countries(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<CountryRules>, CoreError> {
        Ok(self.store.sms_countries(tenant).await?)
    }

    /// Sets (or, with `None`, clears) a tenant's country rules. Every node applies them
    /// from the next send on: they are read inside each admission.
    pub async fn set_tenant_sms_countries(
        &self,
        tenant: &TenantId,
        rules: Option<&CountryRules>,
    ) -> Result<(), CoreError> {
        Ok(self
            .store
            .set_sms_countries(tenant, rules, self.clock.now())
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_768_478_400 + secs).unwrap()
    }

    fn record(channel: Channel, end_user: Option<&str>, now: i64) -> SendRecord {
        SendRecord {
            tenant_id: TenantId::parse("tenant_01HZZZZZZZZZZZZZZZZZZZZZZZ").unwrap(),
            channel,
            destination: "d0".into(),
            prefix: Some("+1415".into()),
            end_user: end_user.and_then(UserId::parse),
            at: at(now),
        }
    }

    #[test]
    fn cooldown_then_hourly_then_daily() {
        let l = SendLimits::default();
        let r = record(Channel::Sms, None, 1000);
        let mut h = SendHistory::default();
        assert_eq!(l.judge(&r, &h), Ok(()));
        h.destination = vec![at(990)];
        assert_eq!(
            l.judge(&r, &h),
            Err((SendLimit::Cooldown, Duration::seconds(20)))
        );
        h.destination = (0..5).map(|i| at(900 - i * 60)).collect();
        // The 5th newest (at 660) leaves the hour at 4260.
        assert_eq!(
            l.judge(&r, &h),
            Err((SendLimit::DestinationHour, Duration::seconds(3260)))
        );
        h.destination = (0..10).map(|i| at(-i * 3600)).collect();
        let (limit, wait) = l.judge(&r, &h).unwrap_err();
        assert_eq!(limit, SendLimit::DestinationDay);
        assert_eq!(wait, at(-9 * 3600) + DAY - at(1000));
    }

    #[test]
    fn tenant_prefix_and_user_limits_apply_to_sms_only() {
        let l = SendLimits::default();
        let full = Window {
            count: 1000,
            oldest: Some(at(100)),
        };
        let h = SendHistory {
            tenant_hour: full,
            ..SendHistory::default()
        };
        let sms = record(Channel::Sms, None, 1000);
        assert_eq!(
            l.judge(&sms, &h),
            Err((SendLimit::TenantHour, Duration::seconds(2700)))
        );
        assert_eq!(l.judge(&record(Channel::Email, None, 1000), &h), Ok(()));
        let h = SendHistory {
            prefix_hour: Window {
                count: 100,
                oldest: Some(at(0)),
            },
            ..SendHistory::default()
        };
        assert_eq!(l.judge(&sms, &h).unwrap_err().0, SendLimit::PrefixHour);

        let three: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|d| ((*d).to_owned(), at(10)))
            .collect();
        let h = SendHistory {
            user_destinations: three.clone(),
            ..SendHistory::default()
        };
        let jwt = record(Channel::Sms, Some("user_1"), 1000);
        assert_eq!(l.judge(&jwt, &h).unwrap_err().0, SendLimit::UserNumbersDay);
        // A number the user already texted today is not a new one; API-key sends are not
        // counted per end user.
        let mut known = h.clone();
        known.user_destinations[0].0 = "d0".into();
        assert_eq!(l.judge(&jwt, &known), Ok(()));
        assert_eq!(l.judge(&sms, &h), Ok(()));
    }

    #[test]
    fn country_rules() {
        let r = CountryRules::parse("us, ca", "").unwrap();
        assert!(r.permits(Some("US")) && r.permits(Some("CA")));
        assert!(!r.permits(Some("GB")) && !r.permits(None));
        let d = CountryRules::parse("", "gb").unwrap();
        assert!(!d.permits(Some("GB")) && d.permits(Some("US")) && d.permits(None));
        assert!(CountryRules::parse("USA", "").is_err());
        assert!(CountryRules::parse("", "ZZ").is_err());
    }

    #[test]
    fn regions_and_prefixes_come_from_the_numbering_plan() {
        for (number, region, prefix) in [
            ("+14155552671", "US", "+1415"),
            ("+16135550123", "CA", "+1613"),
            ("+442079460958", "GB", "+44207"),
        ] {
            let p = PhoneNumber::parse(number).unwrap();
            let (r, pre) = region_and_prefix(&p);
            assert_eq!(
                (r.as_deref(), pre.as_str()),
                (Some(region), prefix),
                "{number}"
            );
        }
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(whole_seconds(Duration::milliseconds(1)), 1);
        assert_eq!(whole_seconds(Duration::milliseconds(20_001)), 21);
        assert_eq!(whole_seconds(Duration::seconds(30)), 30);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
    }
}
