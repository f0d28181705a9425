//! Extractors that turn every client mistake into a problem response.

use crate::problem::Problem;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// `axum::Json` with problem+json rejections: 400 malformed JSON, 415 wrong content type,
/// 413 body too large, 422 JSON of the wrong shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(json_problem(rej)),
        }
    }
}

fn json_problem(rej: JsonRejection) -> Problem {
    let detail = rej.body_text();
    if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Payload too large",
            "the request body exceeds the size limit",
        );
    }
    match rej {
        JsonRejection::JsonSyntaxError(_) => Problem::bad_request("malformed-json", detail),
        JsonRejection::JsonDataError(_) => Problem::unprocessable("invalid-request-body", detail),
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as application/json",
        ),
        other => Problem::new(
            other.status(),
            "invalid-request-body",
            "Bad request",
            detail,
        ),
    }
}

/// `axum::extract::Query` with problem+json rejections.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rej) => Err(query_problem(rej)),
        }
    }
}

fn query_problem(rej: QueryRejection) -> Problem {
    Problem::bad_request("invalid-query", rej.body_text())
}
