//! Multi-head softmax attention over one set of tokens (one window of a windowed
//! attention block): `softmax(q·kᵀ / √d) · v` per head, from fused `q | k | v` rows.
//!
//! Each logit is the dot product of a query and a key accumulated in increasing channel
//! order, then scaled; the softmax subtracts the row's max, exponentiates and sums the
//! weights in key order; each output is `Σⱼ pⱼ·vⱼ` in key order, divided by that sum. All
//! products and sums are separate roundings (no fused multiply-add), so the AVX2 build of
//! the same loops gives the portable one's bits. The keys of a head are transposed once so
//! that a query's logits are summed in registers for a block of keys at a time, vectorized
//! across keys while keeping each logit's channel order; outputs likewise, across channels.

use super::cpu::Isa;

/// Keys (or value channels) one pass accumulates in registers (four AVX2 vectors).
const BLOCK: usize = 32;

/// Reusable buffers of [`attend`] (one per thread).
#[derive(Debug, Default, Clone)]
pub struct AttentionScratch {
    keys_t: Vec<f32>,
    values: Vec<f32>,
    logits: Vec<f32>,
}

/// `out` (`[n, channels]`) = attention of the `n` tokens in `qkv` (`[n, 3·channels]`:
/// q | k | v, each `heads` blocks of `channels / heads`).
///
/// # Panics
/// When `heads` does not divide `channels` or the slices are not `n` rows long.
pub fn attend(
    isa: Isa,
    qkv: &[f32],
    channels: usize,
    heads: usize,
    out: &mut [f32],
    scratch: &mut AttentionScratch,
) {
    assert!(
        heads > 0 && channels.is_multiple_of(heads),
        "{heads} heads do not divide {channels} channels"
    );
    let n = out.len() / channels.max(1);
    assert_eq!(out.len(), n * channels, "output is not whole rows");
    assert_eq!(
        qkv.len(),
        3 * n * channels,
        "qkv rows do not match the output rows"
    );
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the SIMD paths are only selected (or accepted by `with_isa`) when AVX2
        // was detected.
        Isa::Avx2 | Isa::Avx512Vnni | Isa::Amx => unsafe {
            attend_avx2(qkv, n, channels, heads, out, scratch)
        },
        _ => attend_portable(qkv, n, channels, heads, out, scratch),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attend_avx2(
    qkv: &[f32],
    n: usize,
    channels: usize,
    heads: usize,
    out: &mut [f32],
    scratch: &mut AttentionScratch,
) {
    attend_portable(qkv, n, channels, heads, out, scratch);
}

#[inline(always)]
fn attend_portable(
    qkv: &[f32],
    n: usize,
    channels: usize,
    heads: usize,
    out: &mut [f32],
    s: &mut AttentionScratch,
) {
    let d = channels / heads;
    let scale = (d as f32).powf(-0.5);
    let stride = 3 * channels;
    let (key_blocks, d_blocks) = (n.div_ceil(BLOCK), d.div_ceil(BLOCK));
    // Keys transposed in blocks of BLOCK keys (`[key block][channel][key]`), values in
    // rows of whole blocks (`[key][value block][channel]`), both zero-padded.
    s.keys_t.clear();
    s.keys_t.resize(key_blocks * d * BLOCK, 0.0);
    s.values.clear();
    s.values.resize(n * d_blocks * BLOCK, 0.0);
    s.logits.resize(n, 0.0);
    let logits = &mut s.logits[..n];
    for h in 0..heads {
        for (j, row) in qkv.chunks_exact(stride).enumerate() {
            let block = &mut s.keys_t[j / BLOCK * d * BLOCK..][..d * BLOCK];
            for (c, &k) in row[channels + h * d..][..d].iter().enumerate() {
                block[c * BLOCK + j % BLOCK] = k;
            }
            s.values[j * d_blocks * BLOCK..][..d]
                .copy_from_slice(&row[2 * channels + h * d..][..d]);
        }
        for (i, row) in qkv.chunks_exact(stride).enumerate() {
            let q = &row[h * d..][..d];
            for (keys, logits) in s
                .keys_t
                .chunks_exact(d * BLOCK)
                .zip(logits.chunks_mut(BLOCK))
            {
                let acc = weighted_sum(q.iter().zip(keys.chunks_exact(BLOCK)));
                logits.copy_from_slice(&acc[..logits.len()]);
            }
            let mut max = f32::NEG_INFINITY;
            for l in logits.iter_mut() {
                *l *= scale;
                max = max.max(*l);
            }
            let mut sum = 0.0;
            for l in logits.iter_mut() {
                *l = (*l - max).exp();
                sum += *l;
            }
            let o = &mut out[i * channels + h * d..][..d];
            for (b, o) in o.chunks_mut(BLOCK).enumerate() {
                let rows = s.values.chunks_exact(d_blocks * BLOCK);
                let acc = weighted_sum(logits.iter().zip(rows.map(|v| &v[b * BLOCK..][..BLOCK])));
                for (o, a) in o.iter_mut().zip(acc) {
                    *o = a / sum;
                }
            }
        }
    }
}

/// `Σ w·v` over `(w, v)` terms in order, each term's product and sum rounded on their own;
/// the fixed block length keeps the sums in registers.
#[inline(always)]
fn weighted_sum<'a>(terms: impl Iterator<Item = (&'a f32, &'a [f32])>) -> [f32; BLOCK] {
    let mut acc = [0.0f32; BLOCK];
    for (&w, v) in terms {
        let v: &[f32; BLOCK] = v.try_into().expect("a whole block");
        for (a, &v) in acc.iter_mut().zip(v) {
            *a += w * v;
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_of_two_tokens_by_hand() {
        // 2 tokens, 1 head of 1 channel: q = [1, 0], k = [0, 2], v = [3, 5].
        let qkv = [1.0, 0.0, 3.0, 0.0, 2.0, 5.0];
        for isa in Isa::available() {
            let mut out = [0.0; 2];
            attend(isa, &qkv, 1, 1, &mut out, &mut AttentionScratch::default());
            // Token 0: logits [0, 2] → weights 1/(1+e²), e²/(1+e²).
            let e2 = 2f32.exp();
            assert!(
                (out[0] - (3.0 + 5.0 * e2) / (1.0 + e2)).abs() < 1e-5,
                "{isa}"
            );
            // Token 1: logits [0, 0] → mean of v.
            assert!((out[1] - 4.0).abs() < 1e-6, "{isa}");
        }
    }

    #[test]
    fn heads_attend_to_their_own_channels() {
        // 2 tokens, 2 heads of 1 channel. Head 0 has equal logits (mean of its v); head 1's
        // second key is huge, so it copies token 1's v.
        #[rustfmt::skip]
        let qkv = [
            // q0 q1   k0 k1    v0 v1
            0.0, 1.0,  1.0, 0.0,  2.0, 10.0,
            0.0, 1.0,  1.0, 50.0, 4.0, 20.0,
        ];
        let mut out = [0.0; 4];
        attend(
            Isa::Scalar,
            &qkv,
            2,
            2,
            &mut out,
            &mut AttentionScratch::default(),
        );
        assert_eq!(out, [3.0, 20.0, 3.0, 20.0]);
    }
}
