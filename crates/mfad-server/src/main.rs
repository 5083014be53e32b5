//! `mfad`: serve the API, migrate the database, manage API keys, JWT keys and tenant settings.

use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mfad_core::model::Tenant;
use mfad_core::{Clock, SystemClock};
use mfad_server::config::Config;
use mfad_server::jwt::{KeyFile, read_key_file};
use mfad_server::startup::{self, Application};

/// A self-hosted multi-factor authentication service speaking the WorkOS MFA API and the
/// FusionAuth Two Factor API.
///
/// Configuration comes from MFAD_* environment variables (see the README).
#[derive(Debug, Parser)]
#[command(name = "mfad", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (on MFAD_LISTEN, default 127.0.0.1:8080).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API keys.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Inspect and unlock factors throttled after wrong codes.
    #[command(subcommand)]
    Factor(FactorCommand),
    /// Per-tenant settings.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage the keys that verify FusionAuth bearer JWTs, per tenant; running servers
    /// pick up changes within 2 s.
    #[command(subcommand, name = "jwt-key")]
    JwtKey(JwtKeyCommand),
    /// Master keys (MFAD_MASTER_KEYS): what each still seals, and online rotation.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Passkeys (FusionAuth WebAuthn API): each tenant's relying party.
    #[command(subcommand)]
    Webauthn(WebauthnCommand),
    /// Webhook endpoints and their deliveries (docs/WEBHOOKS.md).
    #[command(subcommand)]
    Webhook(mfad_server::webhooks::cli::WebhookCommand),
}

#[derive(Debug, Subcommand)]
enum WebauthnCommand {
    /// Show or set a tenant's relying party: its id, name, allowed origins and attestation
    /// policy. Servers read it at the start of every ceremony, so a change holds on every
    /// node from the next request. Without options, shows the configuration.
    Config {
        /// Tenant name or id.
        #[arg(long)]
        tenant: String,
        /// Relying party id: a registrable domain (`example.com`) or `localhost`.
        #[arg(long)]
        rp_id: Option<String>,
        /// Name authenticators show (default: the rp id).
        #[arg(long)]
        rp_name: Option<String>,
        /// An allowed origin (`https://example.com`, `http://localhost:8080`); repeat for
        /// several. Ceremonies from any other origin are refused.
        #[arg(long = "origin")]
        origins: Vec<String>,
        /// Attestation asked of new authenticators: `none` (default) or `direct` (verified
        /// against --trust-store).
        #[arg(long, default_value = "none")]
        attestation: String,
        /// PEM file of attestation CA certificates trusted with `--attestation direct`.
        #[arg(long)]
        trust_store: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// One line per master key, `ID COUNT`: the values it still seals. The active key
    /// comes first; a key not configured is named by the id its values carry. A key can
    /// be removed from the configuration once it seals 0 values.
    Status,
    /// Re-encrypt every sealed value (TOTP secrets, recovery codes, JWT secrets, stored
    /// idempotent responses, webhook signing secrets) under the active key, the first of MFAD_MASTER_KEYS. Runs
    /// online, in batches, while servers serve; safe to interrupt and run again, and to
    /// run on several nodes at once. Give every node the new key list first.
    Rotate {
        /// Values per batch.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        batch_size: u32,
    },
}

#[derive(Debug, Subcommand)]
enum FactorCommand {
    /// Show a factor's tenant, user, type and throttle state (failures, delay, lock).
    Show {
        /// The factor id (`auth_factor_…`).
        factor_id: String,
    },
    /// Clear a factor's failures: its next code is judged at once, on every node. With
    /// `--user` and `--tenant` instead, clear a user's failures (FusionAuth's per-user
    /// count) and those of all the user's factors.
    #[command(arg_required_else_help = true)]
    Unlock {
        /// The factor id (`auth_factor_…`).
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        factor_id: Option<String>,
        /// The user id, as the application names it.
        #[arg(long, requires = "tenant")]
        user: Option<String>,
        /// The user's tenant, by id (`tenant_…`) or name.
        #[arg(long, requires = "user")]
        tenant: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Show or set which countries a tenant may text (ISO 3166 alpha-2 codes). The rules
    /// narrow the deployment's MFAD_SMS_ALLOWED_COUNTRIES / MFAD_SMS_DENIED_COUNTRIES and
    /// apply on every node from the next send. Without options, shows the rules.
    #[command(name = "sms-countries")]
    SmsCountries {
        /// Tenant name or id.
        #[arg(long)]
        tenant: String,
        /// Only these countries, comma-separated (e.g. `US,CA`); `--allow ""` clears.
        #[arg(long)]
        allow: Option<String>,
        /// Never these countries, comma-separated; `--deny ""` clears.
        #[arg(long)]
        deny: Option<String>,
        /// Remove the tenant's rules (the deployment's alone apply).
        #[arg(long, conflicts_with_all = ["allow", "deny"])]
        clear: bool,
    },
}

#[derive(Debug, Subcommand)]
enum JwtKeyCommand {
    /// Add verification keys to a tenant (created if new): its tokens then act in it only.
    #[command(group(clap::ArgGroup::new("key").required(true).multiple(false)))]
    Add {
        /// Tenant name, e.g. `acme`.
        #[arg(long)]
        tenant: String,
        /// A file holding an HS256 secret (at least 32 bytes; one final line break is
        /// dropped). Stored encrypted under the master key.
        #[arg(long, group = "key")]
        hs256_secret_file: Option<std::path::PathBuf>,
        /// A file of PEM public keys (RSA, P-256, P-384 or Ed25519).
        #[arg(long, group = "key")]
        public_key_file: Option<std::path::PathBuf>,
        /// A JWKS document; each key keeps its own `kid`.
        #[arg(long, group = "key")]
        jwks_file: Option<std::path::PathBuf>,
        /// The `kid` that selects this key among the tenant's (rotation); for a JWKS, add
        /// only the key with this `kid`.
        #[arg(long)]
        kid: Option<String>,
    },
    /// List keys (ids, tenants, kids and algorithms, never the secrets).
    List,
    /// Remove a key by id (`jwtkey_…`).
    Remove {
        /// The key id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Create a key for a tenant (created if new); the key is printed as the last line.
    Create {
        /// Tenant name, e.g. `acme`.
        #[arg(long)]
        tenant: String,
        /// A label for the key.
        #[arg(long)]
        name: Option<String>,
    },
    /// List keys (ids and tenants, never the secrets).
    List,
    /// Revoke a key by id (`key_…`); it stops working immediately.
    Revoke {
        /// The key id.
        id: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mfad: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    mfad_server::telemetry::init(config.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mfad: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mfad: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The service every operator command acts through.
type AdminService = mfad_core::Service<Arc<dyn mfad_store::Database>>;

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match command {
        Command::Serve => {
            tracing::info!(?config, "starting mfad");
            let app = Application::build(&config, clock).await?;
            tracing::info!(addr = %app.local_addr()?, "listening");
            app.run_until(startup::shutdown_signal()).await
        }
        Command::Migrate => {
            let db = startup::open_database(&config).await?;
            db.migrate().await.context("applying migrations")?;
            db.close().await;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::ApiKey(cmd) => with_service(&config, clock, async |s| api_key(s, cmd).await).await,
        Command::Factor(cmd) => with_service(&config, clock, async |s| factor(s, cmd).await).await,
        Command::Tenant(cmd) => with_service(&config, clock, async |s| tenant(s, cmd).await).await,
        Command::JwtKey(cmd) => with_service(&config, clock, async |s| jwt_key(s, cmd).await).await,
        Command::Keys(cmd) => with_service(&config, clock, async |s| keys(s, cmd).await).await,
        Command::Webauthn(cmd) => {
            with_service(&config, clock, async |s| webauthn(s, cmd).await).await
        }
        Command::Webhook(cmd) => {
            let run = mfad_server::webhooks::cli::run;
            with_service(&config, clock, async |s| run(s, cmd).await).await
        }
    }
}

/// Runs one operator command against the migrated database, closing the store after it
/// whatever the outcome. Commands that touch sealed values call
/// `startup::require_master_keys` first themselves.
async fn with_service(
    config: &Config,
    clock: Arc<dyn Clock>,
    command: impl AsyncFnOnce(&AdminService) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let db = startup::open_database(config).await?;
    db.migrate().await.context("applying migrations")?;
    let service = startup::build_service(config, db, clock)?;
    let result = command(&service).await;
    service.store().close().await;
    result
}

/// The tenant an operator names by name or id; never created here.
async fn named_tenant(service: &AdminService, tenant: &str) -> anyhow::Result<Tenant> {
    service
        .find_tenant(tenant)
        .await
        .map_err(describe)?
        .ok_or_else(|| anyhow::anyhow!("no tenant named {tenant:?}"))
}

async fn webauthn(service: &AdminService, cmd: WebauthnCommand) -> anyhow::Result<()> {
    use mfad_core::webauthn::{AttestationPolicy, ConfigInput};
    let WebauthnCommand::Config {
        tenant,
        rp_id,
        rp_name,
        origins,
        attestation,
        trust_store,
    } = cmd;
    let found = named_tenant(service, &tenant).await?;
    if let Some(rp_id) = rp_id {
        let attestation = AttestationPolicy::parse(&attestation)
            .ok_or_else(|| anyhow::anyhow!("--attestation is none or direct"))?;
        let trust_store_pem = match trust_store {
            Some(p) => Some(
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
            ),
            None => None,
        };
        if attestation == AttestationPolicy::Direct && trust_store_pem.is_none() {
            anyhow::bail!("--attestation direct needs --trust-store");
        }
        if origins.is_empty() {
            anyhow::bail!("give at least one --origin");
        }
        service
            .set_webauthn_config(
                &found.id,
                ConfigInput {
                    rp_id,
                    rp_name,
                    origins,
                    attestation,
                    trust_store_pem,
                },
            )
            .await
            .map_err(describe)?;
    } else if !origins.is_empty() || rp_name.is_some() || trust_store.is_some() {
        anyhow::bail!("--rp-id is required to set the configuration");
    }
    println!("tenant: {} ({})", found.name, found.id);
    match service.webauthn_config(&found.id).await.map_err(describe)? {
        Some(c) => {
            println!("rp id: {}", c.rp_id);
            println!("rp name: {}", c.rp_name);
            println!("origins: {}", c.origins.join(" "));
            println!("attestation: {}", c.attestation.as_str());
            println!(
                "trust store: {}",
                if c.trust_store_pem.is_some() {
                    "set"
                } else {
                    "none"
                }
            );
        }
        None => println!("webauthn: not configured"),
    }
    Ok(())
}

async fn keys(service: &AdminService, cmd: KeysCommand) -> anyhow::Result<()> {
    let print_status = |usage: &[mfad_core::rotation::KeyUsage]| {
        for u in usage {
            println!("{} {}", u.label(), u.count);
        }
    };
    match cmd {
        KeysCommand::Status => {
            let usage = service.key_usage().await.map_err(describe)?;
            print_status(&usage);
            if let Some(active) = usage.iter().find(|u| u.active) {
                eprintln!("active: {} (id {})", active.label(), active.id);
            }
            Ok(())
        }
        KeysCommand::Rotate { batch_size } => {
            startup::require_master_keys(service).await?;
            // Values written during a pass by a node whose active key differs are caught
            // by the next pass; three passes that still leave some mean such a node exists.
            let mut total = mfad_core::rotation::RotationReport::default();
            for _ in 0..3 {
                let report = service
                    .rotate_all(batch_size, |kind, b| {
                        if b.rotated + b.raced + b.unreadable > 0 {
                            eprintln!(
                                "{}: {} rotated, {} changed meanwhile, {} unreadable",
                                kind.as_str(),
                                b.rotated,
                                b.raced,
                                b.unreadable
                            );
                        }
                    })
                    .await
                    .map_err(describe)?;
                total.rotated += report.rotated;
                total.raced += report.raced;
                total.unreadable = report.unreadable;
                let left = service.key_usage().await.map_err(describe)?;
                if left.iter().all(|u| u.active || u.count == 0) || report.unreadable > 0 {
                    break;
                }
            }
            let usage = service.key_usage().await.map_err(describe)?;
            print_status(&usage);
            eprintln!(
                "rotated {} values ({} changed meanwhile by requests or another rotation)",
                total.rotated, total.raced
            );
            anyhow::ensure!(
                total.unreadable == 0,
                "{} values open under no configured key (damaged, or sealed by a key that was \
                 never configured here)",
                total.unreadable
            );
            let left: u64 = usage.iter().filter(|u| !u.active).map(|u| u.count).sum();
            anyhow::ensure!(
                left == 0,
                "{left} values are still sealed by other keys: a node with another active key \
                 is writing; give every node the same MFAD_MASTER_KEYS and run again"
            );
            Ok(())
        }
    }
}

async fn factor(service: &AdminService, cmd: FactorCommand) -> anyhow::Result<()> {
    use mfad_core::verify::Gate;
    startup::require_master_keys(service).await?;
    match cmd {
        FactorCommand::Show { factor_id } => {
            let (f, gate) = service.inspect_factor(&factor_id).await.map_err(describe)?;
            println!("factor: {}", f.id);
            println!("tenant: {}", f.tenant_id);
            println!(
                "user: {}",
                f.user_id.as_ref().map_or("-", mfad_core::UserId::as_str)
            );
            println!(
                "type: {}",
                mfad_server::routes::workos::wire::factor_type(f.details.factor_type())
            );
            println!("consecutive failures: {}", f.failures.consecutive);
            let last = f.failures.last_at.map_or_else(
                || "-".to_owned(),
                mfad_server::routes::workos::wire::timestamp,
            );
            println!("last failure: {last}");
            match gate {
                Gate::Open => println!("state: open"),
                Gate::Delayed(d) => println!(
                    "state: delayed (next code judged in {} s)",
                    d.whole_seconds().max(1)
                ),
                Gate::Locked => println!(
                    "state: locked (refuses every code; `mfad factor unlock {}` lifts it)",
                    f.id
                ),
            }
        }
        FactorCommand::Unlock {
            factor_id: Some(id),
            ..
        } => {
            service.unlock_factor(&id).await.map_err(describe)?;
            println!("unlocked {id}");
        }
        FactorCommand::Unlock {
            factor_id: None,
            user: Some(user),
            tenant: Some(tenant),
        } => {
            let cleared = service
                .unlock_user(&tenant, &user)
                .await
                .map_err(describe)?;
            println!("unlocked user {user} in {tenant} ({cleared} counts cleared)");
        }
        FactorCommand::Unlock { .. } => {
            anyhow::bail!("give a factor id, or --user and --tenant")
        }
    }
    Ok(())
}

async fn tenant(service: &AdminService, cmd: TenantCommand) -> anyhow::Result<()> {
    let TenantCommand::SmsCountries {
        tenant,
        allow,
        deny,
        clear,
    } = cmd;
    startup::require_master_keys(service).await?;
    let found = named_tenant(service, &tenant).await?;
    let current = service
        .tenant_sms_countries(&found.id)
        .await
        .map_err(describe)?
        .unwrap_or_default();
    if clear || allow.is_some() || deny.is_some() {
        let rules = mfad_core::send_limits::CountryRules::parse(
            &allow.unwrap_or_else(|| current.allowed.join(",")),
            &deny.unwrap_or_else(|| current.denied.join(",")),
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        let rules = (!clear && !rules.is_empty()).then_some(rules);
        service
            .set_tenant_sms_countries(&found.id, rules.as_ref())
            .await
            .map_err(describe)?;
    }
    let shown = service
        .tenant_sms_countries(&found.id)
        .await
        .map_err(describe)?
        .unwrap_or_default();
    let or_any = |l: &[String], none: &str| {
        if l.is_empty() {
            none.to_owned()
        } else {
            l.join(",")
        }
    };
    println!("tenant: {} ({})", found.name, found.id);
    println!("allowed: {}", or_any(&shown.allowed, "(deployment's)"));
    println!("denied: {}", or_any(&shown.denied, "(deployment's)"));
    Ok(())
}

async fn jwt_key(service: &AdminService, cmd: JwtKeyCommand) -> anyhow::Result<()> {
    startup::require_master_keys(service).await?;
    match cmd {
        JwtKeyCommand::Add {
            tenant,
            hs256_secret_file,
            public_key_file,
            jwks_file,
            kid,
        } => {
            let (kind, path) = match (hs256_secret_file, public_key_file, jwks_file) {
                (Some(p), _, _) => (KeyFile::Hs256Secret, p),
                (_, Some(p), _) => (KeyFile::PublicPem, p),
                (_, _, Some(p)) => (KeyFile::Jwks, p),
                (None, None, None) => anyhow::bail!("give one key file"),
            };
            let keys = read_key_file(kind, &path, kid.as_deref())
                .with_context(|| format!("{}", path.display()))?;
            let (tenant, added) = service
                .add_jwt_keys(&tenant, keys)
                .await
                .map_err(describe)?;
            println!("tenant: {} ({})", tenant.name, tenant.id);
            for k in added {
                println!(
                    "added {}\t{}\t{}",
                    k.id,
                    k.kid.as_deref().unwrap_or("-"),
                    k.alg
                );
            }
        }
        JwtKeyCommand::List => {
            for (key, tenant) in service.list_jwt_keys().await.map_err(describe)? {
                println!(
                    "{}\t{}\t{}\t{}",
                    key.id,
                    tenant.name,
                    key.kid.as_deref().unwrap_or("-"),
                    key.alg
                );
            }
        }
        JwtKeyCommand::Remove { id } => {
            service.remove_jwt_key(&id).await.map_err(describe)?;
            println!("removed {id}");
        }
    }
    Ok(())
}

async fn api_key(service: &AdminService, cmd: ApiKeyCommand) -> anyhow::Result<()> {
    startup::require_master_keys(service).await?;
    match cmd {
        ApiKeyCommand::Create { tenant, name } => {
            let created = service
                .create_api_key(&tenant, name.as_deref())
                .await
                .map_err(describe)?;
            println!("tenant: {} ({})", created.tenant.name, created.tenant.id);
            println!("key id: {}", created.key.id);
            println!("{}", created.token.as_str());
            eprintln!("Store this key now: it cannot be shown again.");
        }
        ApiKeyCommand::List => {
            for (key, tenant) in service.list_api_keys().await.map_err(describe)? {
                let status = if key.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!("{}\t{}\t{}\t{}", key.id, tenant.name, key.name, status);
            }
        }
        ApiKeyCommand::Revoke { id } => {
            service.revoke_api_key(&id).await.map_err(describe)?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

fn describe(e: mfad_core::CoreError) -> anyhow::Error {
    use mfad_core::error::Field;
    match e {
        mfad_core::CoreError::Validation(fields) => anyhow::anyhow!(
            "{}",
            fields
                .iter()
                .map(|f| match f.field {
                    Field::TenantName => {
                        "tenant names are 1-64 characters of letters, digits, '-', '_' and '.'"
                            .to_owned()
                    }
                    _ => mfad_server::error::workos_field_error(f).message,
                })
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => anyhow::Error::new(other),
    }
}
