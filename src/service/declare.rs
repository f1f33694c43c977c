//! One declaration per setting. [`settings!`](crate::settings) turns a list
//! of settings (doc comment, key, kind, type, default) into the config
//! struct read from TOML (key = field name, unknown keys refused, every key
//! optional) and the service's flags (`--field-name`, same doc comment), plus
//! the code that lays the flags over the file, and its `ServiceConfig`
//! (the struct's own `validate`, and the `admin` key every service has). Adding a setting is one entry
//! here plus its line in the README and the example config.
//!
//! Kinds: `value T` (a flag `--key V` replaces the file's value), `option T`
//! (the key may be absent; the flag sets it), `list T` (the flag, repeated,
//! replaces the whole list), `switch` (a `bool`; the flag turns it on). Keys
//! listed under `file_only` (tables such as `[broker_tls]`, and `admin`,
//! whose flag is the mode's `--admin`, one of its process flags) have no flag.

/// Declares a service's settings once; see the module documentation.
#[macro_export]
macro_rules! settings {
    (
        $(#[$meta:meta])*
        pub struct $config:ident, flags $flags:ident (example $example:literal) {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $kind:ident $($ty:ty)? = $default:expr
            ),* $(,)?
        }
        file_only {
            $(
                $(#[doc = $fdoc:literal])*
                $ffield:ident : $fty:ty = $fdefault:expr
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $config {
            $( $(#[doc = $doc])* pub $field: $crate::settings!(@type $kind $($ty)?), )*
            $( $(#[doc = $fdoc])* pub $ffield: $fty, )*
        }

        impl Default for $config {
            fn default() -> Self {
                Self {
                    $( $field: $default, )*
                    $( $ffield: $fdefault, )*
                }
            }
        }

        $crate::settings!(@flags $flags $example {}
            $( [$(#[doc = $doc])*] $field : $kind $($ty)? ; )*
        );

        impl $crate::service::ServiceConfig for $config {
            fn validate(&self) -> anyhow::Result<()> {
                $config::validate(self)
            }

            fn admin(&self) -> Option<&$crate::net::HostPort> {
                self.admin.as_ref()
            }
        }

        impl $flags {
            /// The file's settings (or the defaults) with the flags laid over them.
            pub fn resolve(&self) -> Result<$config, $crate::service::settings::ConfigError> {
                #[allow(unused_mut)]
                let mut config: $config = $crate::service::settings::file_or_default(&self.config)?;
                $( $crate::settings!(@apply $kind config.$field, &self.$field); )*
                Ok(config)
            }
        }
    };

    // The flags struct is built field by field, so that clap's derive sees
    // `Option<T>`, `Vec<T>` and `bool` as written (it reads a field's kind
    // from its type's spelling).
    (@flags $flags:ident $example:literal { $($acc:tt)* }) => {
        #[doc = "The service's flags: each overrides the config key of the same name."]
        #[derive(Debug, Clone, Default, clap::Args)]
        pub struct $flags {
            #[arg(
                long,
                value_name = "FILE",
                help = concat!("TOML config file (see ", $example, "); the flags below override its keys")
            )]
            pub config: Option<std::path::PathBuf>,
            /// Log format, admin endpoint and threads of the process.
            #[command(flatten)]
            pub process: $crate::service::settings::ProcessFlags,
            $($acc)*
        }
    };
    (@flags $flags:ident $example:literal { $($acc:tt)* }
        [$(#[doc = $d:literal])*] $f:ident : value $ty:ty ; $($rest:tt)*) => {
        $crate::settings!(@flags $flags $example {
            $($acc)* $(#[doc = $d])* #[arg(long)] pub $f: Option<$ty>,
        } $($rest)*);
    };
    (@flags $flags:ident $example:literal { $($acc:tt)* }
        [$(#[doc = $d:literal])*] $f:ident : option $ty:ty ; $($rest:tt)*) => {
        $crate::settings!(@flags $flags $example {
            $($acc)* $(#[doc = $d])* #[arg(long)] pub $f: Option<$ty>,
        } $($rest)*);
    };
    (@flags $flags:ident $example:literal { $($acc:tt)* }
        [$(#[doc = $d:literal])*] $f:ident : list $ty:ty ; $($rest:tt)*) => {
        $crate::settings!(@flags $flags $example {
            $($acc)* $(#[doc = $d])* #[arg(long)] pub $f: Vec<$ty>,
        } $($rest)*);
    };
    (@flags $flags:ident $example:literal { $($acc:tt)* }
        [$(#[doc = $d:literal])*] $f:ident : switch ; $($rest:tt)*) => {
        $crate::settings!(@flags $flags $example {
            $($acc)* $(#[doc = $d])* #[arg(long)] pub $f: bool,
        } $($rest)*);
    };

    (@type value $ty:ty) => { $ty };
    (@type option $ty:ty) => { Option<$ty> };
    (@type list $ty:ty) => { Vec<$ty> };
    (@type switch) => { bool };

    (@apply value $target:expr, $flag:expr) => {
        if let Some(v) = $flag {
            $target = v.clone();
        }
    };
    (@apply option $target:expr, $flag:expr) => {
        if let Some(v) = $flag {
            $target = Some(v.clone());
        }
    };
    (@apply list $target:expr, $flag:expr) => {
        if !$flag.is_empty() {
            $target = $flag.clone();
        }
    };
    (@apply switch $target:expr, $flag:expr) => {
        if *$flag {
            $target = true;
        }
    };
}
