//! The OTLP/gRPC receiver, written out instead of the generated server so that a
//! malformed message is answered `INVALID_ARGUMENT` (the generated server's codec says
//! `INTERNAL`, which OTLP exporters treat as retryable and send again, forever), and so
//! the request is decoded straight into the store's spans.

use std::convert::Infallible;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use prost::bytes::Buf as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, Context, Poll, StdError, http};

use crate::model::Span;
use crate::store::SpanStore;

/// The one method OTLP/gRPC trace export has.
const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The trace service over gRPC, in front of a span store.
#[derive(Debug, Clone)]
pub struct Receiver {
    store: Arc<SpanStore>,
    max_message: usize,
}

impl Receiver {
    pub fn new(store: Arc<SpanStore>, max_message: usize) -> Self {
        Self { store, max_message }
    }
}

impl tonic::server::NamedService for Receiver {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl<B> tonic::codegen::Service<http::Request<B>> for Receiver
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != EXPORT {
            return Box::pin(async {
                Ok(
                    tonic::Status::unimplemented("this receiver only has TraceService/Export")
                        .into_http(),
                )
            });
        }
        let me = self.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(SpansCodec(me.store.clone()))
                .apply_max_message_size_config(Some(me.max_message), None);
            Ok(grpc.unary(Export(me.store), req).await)
        })
    }
}

struct Export(Arc<SpanStore>);

impl tonic::server::UnaryService<Vec<Span>> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<tonic::Response<Self::Response>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<Vec<Span>>) -> Self::Future {
        let store = Arc::clone(&self.0);
        Box::pin(async move {
            let mut spans = request.into_inner();
            crate::skew::stamp(&mut spans, crate::sink::now_ns());
            store.insert(spans);
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        })
    }
}

/// Decodes an `ExportTraceServiceRequest` into spans (counting the payloads it must
/// refuse); encodes the (empty) response.
struct SpansCodec(Arc<SpanStore>);

impl Codec for SpansCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Vec<Span>;
    type Encoder = ResponseEncoder;
    type Decoder = SpansDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        SpansDecoder(self.0.clone())
    }
}

struct ResponseEncoder;

impl Encoder for ResponseEncoder {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.reserve(item.encoded_len());
        item.encode(dst)
            .map_err(|e| tonic::Status::internal(format!("encoding the response: {e}")))?;
        Ok(())
    }
}

struct SpansDecoder(Arc<SpanStore>);

impl Decoder for SpansDecoder {
    type Item = Vec<Span>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        let bytes = src.copy_to_bytes(src.remaining());
        crate::otlp::decode_protobuf(&bytes).map(Some).map_err(|e| {
            self.0.count_rejected();
            tonic::Status::invalid_argument(e.to_string())
        })
    }
}
