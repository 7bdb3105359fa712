//! The attention energy's layers, each with a forward pass and the VJP of its output w.r.t. its input.

pub(crate) mod activation;
pub(crate) mod attention;
pub(crate) mod block;
pub(crate) mod feed_forward;
pub(crate) mod layer_norm;
pub(crate) mod linear;
pub(crate) mod time_mlp;
