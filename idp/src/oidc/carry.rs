//! Authorization requests that wait for the resident's login travel through the login page
//! themselves (see [`crate::carry`]).

use chrono::{Duration, NaiveDateTime};

use super::request::{AuthParams, REQUEST_MINUTES};
use crate::IdpState;

const PURPOSE: &str = "authorize-resume";

/// The resume link for a request that waits for login, or `None` when it is too long to carry
/// (it is stored instead).
pub(super) fn carried(state: &IdpState, params: &AuthParams) -> Option<String> {
    let mut params = params.clone();
    params.request_uri = None;
    // The login page's `next` is at most 2048 characters.
    crate::carry::carried(
        state,
        PURPOSE,
        crate::paths::AUTHORIZE_RESUME,
        &params,
        1800,
    )
}

/// The parameters and start time of a carried request, when its MAC is right and it is recent.
pub(super) fn uncarry(state: &IdpState, r: &str, m: &str) -> Option<(AuthParams, NaiveDateTime)> {
    crate::carry::uncarry(state, PURPOSE, r, m, Duration::minutes(REQUEST_MINUTES))
}
