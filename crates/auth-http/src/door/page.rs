//! The sign-in page (spec §10): placeholder until the page lands.

use crate::respond::Body;

pub(super) fn script() -> hyper::Response<Body> {
    crate::respond::text(hyper::StatusCode::NOT_FOUND, "text/plain; charset=utf-8", String::new())
}

pub(super) fn style() -> hyper::Response<Body> {
    script()
}
