//! [`db_error!`](crate::db_error): the one shape of an adapter's internal error, declared by each
//! adapter for its own driver.
//!
//! Port methods fail with their driver's errors and with the ports' own [`StoreError`] (a shape
//! check, a refusal the adapter decided), and use `?` on both; at the port the adapter sorts the
//! driver's errors into the three kinds of [`StoreError`]. A generic enum here could not carry the
//! `From<driver error>` impls that `?` needs (the orphan rule forbids implementing a foreign trait
//! for a foreign type in the adapter), so the enum is generated in the adapter instead, by a macro.
//!
//! [`StoreError`]: auth_core::ports::StoreError

/// Declares an adapter's internal error enum and its conversions.
///
/// Each listed variant wraps one driver error type and names the function that sorts it into a
/// [`StoreError`](auth_core::ports::StoreError) (it takes the error by reference). The macro adds a
/// `Store(StoreError)` variant, `From` impls for every driver error, for `StoreError` and for
/// [`Corrupt`](crate::Corrupt), and `From<Enum> for StoreError`.
///
/// ```
/// # #[derive(Debug)]
/// # struct DriverError;
/// # fn from_driver(_: &DriverError) -> auth_core::ports::StoreError {
/// #     auth_core::ports::StoreError::Unavailable("down".into())
/// # }
/// auth_sql::db_error! {
///     /// What a store call can fail with.
///     #[derive(Debug)]
///     pub(crate) enum DbError {
///         /// The driver's own error.
///         Driver(DriverError) => from_driver,
///     }
/// }
/// let e: DbError = auth_sql::codec::corrupt("bad row").into();
/// assert!(matches!(auth_core::ports::StoreError::from(e), auth_core::ports::StoreError::Corrupt(_)));
/// ```
#[macro_export]
macro_rules! db_error {
    (
        $(#[$attr:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$variant_attr:meta])*
                $variant:ident($driver:ty) => $map:path
            ),+ $(,)?
        }
    ) => {
        $(#[$attr])*
        $vis enum $name {
            $(
                $(#[$variant_attr])*
                $variant($driver),
            )+
            /// One of the ports' own errors: a failed shape check or a refusal the adapter decided.
            Store($crate::__private::StoreError),
        }

        $(
            impl ::core::convert::From<$driver> for $name {
                fn from(e: $driver) -> Self {
                    $name::$variant(e)
                }
            }
        )+

        impl ::core::convert::From<$crate::__private::StoreError> for $name {
            fn from(e: $crate::__private::StoreError) -> Self {
                $name::Store(e)
            }
        }

        impl ::core::convert::From<$crate::Corrupt> for $name {
            fn from(e: $crate::Corrupt) -> Self {
                $name::Store(e.into())
            }
        }

        impl ::core::convert::From<$name> for $crate::__private::StoreError {
            fn from(e: $name) -> Self {
                match e {
                    $( $name::$variant(e) => $map(&e), )+
                    $name::Store(e) => e,
                }
            }
        }
    };
}
