//! The protobuf codec of the gRPC line: prost, with small starting buffers.
//!
//! tonic's default codec gives every stream an 8 KiB encode buffer and an
//! 8 KiB decode buffer up front. A tunnel holds thousands of mostly idle
//! streams, so ours start empty and grow only to what the messages need
//! (an idle connection that only carried its CONNECT holds tens of bytes).

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Bytes each stream's encode and decode buffer starts with: none. Holding
/// 10,000 idle connections, 512 cost each proxy ~2 KiB more RSS per
/// connection than 0 (BENCHMARKS.md).
const INITIAL_BUFFER: usize = 0;
/// Encoded bytes gathered before they are handed to HTTP/2 (tonic's default).
const YIELD_THRESHOLD: usize = 32 * 1024;

/// prost encoding with buffers that start empty.
#[derive(Debug, Clone)]
pub struct LeanCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for LeanCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(INITIAL_BUFFER, YIELD_THRESHOLD)
}

impl<T, U> Codec for LeanCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}
