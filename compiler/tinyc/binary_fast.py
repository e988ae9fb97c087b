"""Compile-time choice and constants of the fast binary convolutions (runtime_c/tc_bconv_fast.c).

The fast kernels compute exactly the dot products of the portable tc_bconv_* (tc_binary.h
states both); what changes is the layout of their constants, prepared here:

- tc_bconv_sparse_*: weights packed along the output channels (`sparse_weights`) and, per
  padding class and output channel, the number of 1 weight bits over the class's valid taps
  (`sparse_valid_ones`); its padding table is the portable one.  For packed output, instead
  of those two and the thresholds: per padding class two counts per channel to compare with in
  bit planes (`sparse_thresholds`; classes with equal tables share one).  Flash: the weights
  of cog channels rounded up to a multiple of 32 (at most SPARSE_MAX_WASTE times the portable
  weights) plus 2 bytes per padding class and output channel (_b1: 2 P / 8 bytes, P about 10);
  code: 3.8-5.9 KiB per real output kind used and 2.6 KiB for _b1, plus 3.7 KiB shared
  (arm-none-eabi-gcc -O2, Cortex-M4; the real kinds' fused per-channel output loop is
  unrolled by 4: _f32 +1.2 KiB, _s8 +2.0 KiB and shared +0.6 KiB, with a 144-byte nibble
  table, over the earlier version; _b1 was 8.2 KiB plus a 0.7 KiB output routine before it
  compared in the planes).  RAM: its scratch
  (`sparse_scratch_bytes`, planned in the arena) caches k_d * k_h listed input rows, about
  2 * k_d * k_h * in_w * (in_c + 2 * groups) bytes plus three uint16 prefix tables per row
  (3.6 KiB for a 3x3 layer of 32 channels and 16 columns): each input bit is listed once per
  layer, each pixel's lists padded to even length with a zero weight word (one per tap and
  group in the weights), and each window sums its bits where the cache holds them.  Positions
  and list lengths are 16-bit, so an input row's padded lists (in_w * (cig + 2) + 4) must fit
  (SPARSE_MAX_INPUT_ROW; the choice rule falls back to the portable kernel otherwise);
- tc_bconv_dw_* (depthwise): the weight bits of all channels per tap (`depthwise_weights`); its
  padding table is the portable one;
- tc_bfc_sliced_* and tc_bfc_list_* (1x1 convolutions and binary dense layers, in place of the
  popcount tc_bfc_* where `fc_kernel` says one is cheaper, the list only in models where it
  pays for its code: `list_pays`): weights packed along the output channels
  (`sliced_fc_weights`, `list_fc_weights`) and, for packed output, the thresholds as bit planes
  of counts (`sliced_fc_thresholds`, `list_fc_thresholds`); tc_bfc_list_* also
  takes each channel's 1 weight bits (`fc_weight_ones`) and a row's list as scratch
  (`list_fc_scratch_bytes`).

`choose` picks the kernel per layer; tests/test_binary_fast.py runs both C versions against the
NumPy reference on the host and on QEMU (Cortex-M3, M4, M7).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tinyc import binary as B

ENABLED = True  # tests switch it off to compile the portable kernels for comparison
SPARSE_MAX_ROW = 65535  # tc_bconv_sparse_*: Wv, the 1 weight bits of a row, is 16-bit
SPARSE_MAX_INPUT_ROW = 65535  # ... and so are a cached record's positions and list lengths
FC_MAX_IN_C = 65535  # tc_bfc_sliced_* / tc_bfc_list_*: counts of at most 16 bit planes
LIST_GAP = 4  # tc_bconv_sparse_*: uint16 between a cached record's 1 and 0 lists
DW_MAX_TAPS = 31  # tc_bconv_dw_*: a five-plane counter per channel
LIST_MIN_SAVING = 0.15  # tc_bfc_list_* over tc_bfc_sliced_*, per layer (list_saving) ...
LIST_SAVING_PER_BYTE = 30  # ... and instructions per inference per byte of code it adds (list_pays)
# Code of tc_bfc_list_* (arm-none-eabi-gcc -O2, Cortex-M4, bytes): the slice sums it shares with
# tc_bconv_sparse_* (tc_bconv_hs_sum_t2), its row listing, and each output kind's function
LIST_SHARED_BYTES = 2_160
LIST_ROW_BYTES = 136
LIST_KIND_BYTES = {"b1": 600, "s32": 1_582, "s8": 2_138, "f32": 2_354}
SPARSE_MAX_WASTE = 1.25  # weight bits stored / needed: 32 output channels per word, so cog
#                          is rounded up to a multiple of 32 (flash matters to a BNN)


def depthwise_eligible(geom: B.BConvGeometry) -> bool:
    return geom.groups == geom.in_c == geom.out_c and geom.taps <= DW_MAX_TAPS


def sparse_eligible(geom: B.BConvGeometry) -> bool:
    stored = 32 * B.words(geom.cog)
    return (geom.taps * geom.cig <= SPARSE_MAX_ROW
            and geom.in_shape[2] * (geom.cig + 2) + LIST_GAP <= SPARSE_MAX_INPUT_ROW
            and stored <= SPARSE_MAX_WASTE * geom.cog)


def choose(geom: B.BConvGeometry) -> str | None:
    """The fast kernel family for this layer ("dw" or "sparse"), or None (portable)."""
    if not ENABLED:
        return None
    if depthwise_eligible(geom):
        return "dw"
    if sparse_eligible(geom):
        return "sparse"
    return None


def _weight_bits(w_packed: np.ndarray, geom: B.BConvGeometry) -> np.ndarray:
    """bool [out_c, taps * cig]: the portable rows' bits (1 = -1)."""
    return B.unpack_bits(np.asarray(w_packed, np.uint32), geom.taps * geom.cig)


def sparse_weights(w_packed: np.ndarray, geom: B.BConvGeometry) -> np.ndarray:
    """tc_bconv_sparse_*'s weights uint32 [groups, words(cog), taps * (cig + 1)] from the
    portable rows uint32 [out_c, words(taps * cig)]: word (g, q, tap * (cig + 1) + ic), and a
    zero word at ic = cig of every tap (the lists' padding position)."""
    bits = _weight_bits(w_packed, geom)  # [out_c, taps * cig]
    ocw = B.words(geom.cog)
    padded = np.zeros((geom.groups, ocw * 32, geom.taps, geom.cig + 1), bool)
    padded[:, :geom.cog, :, :geom.cig] = bits.reshape(geom.groups, geom.cog, geom.taps, geom.cig)
    # [g, q, j, pos] -> [g, q, pos, j]: bit j of word (g, q, pos)
    by_word = padded.reshape(geom.groups, ocw, 32, -1).transpose(0, 1, 3, 2)
    return B.pack_bits(by_word)[..., 0]


def _valid_weight_bits(w_packed: np.ndarray, geom: B.BConvGeometry) -> np.ndarray:
    """int64 [cls_d, cls_h, cls_w, out_c]: the 1 weight bits over each padding class's valid
    taps.  With all weights +1 (bit 0), padding_correction at pad value +1 counts the padded
    bits P; with the real weights it gives P - 2 * (padded 1 bits)."""
    one_padding = replace(geom, pad_value=1)
    signs = B.unpack_conv_weights(w_packed, geom)
    padded_bits = B.padding_correction(one_padding, np.ones_like(signs)).astype(np.int64)
    padded_signs = B.padding_correction(one_padding, signs).astype(np.int64)
    padded_ones = (padded_bits - padded_signs) // 2
    total = _weight_bits(w_packed, geom).sum(axis=1).astype(np.int64)
    return total - padded_ones


def sparse_valid_ones(w_packed: np.ndarray, geom: B.BConvGeometry) -> np.ndarray:
    """tc_bconv_sparse_*'s wv uint16 [cls_d, cls_h, cls_w, out_c]."""
    return _valid_weight_bits(w_packed, geom).astype(np.uint16)


def sparse_scratch_bytes(geom: B.BConvGeometry) -> int:
    """tc_bconv_sparse_scratch_size: per tap a run and a slice (7 int32), per cache slot a tag,
    a row and a slot (int32) and the cache of k_d * k_h input rows: per row and group
    3 * (in_w + 1) + in_w * (cig + 2) + LIST_GAP uint16."""
    k_d, k_h, _ = geom.kernel
    slots = k_d * k_h
    in_w = geom.in_shape[2]
    record = 3 * (in_w + 1) + in_w * (geom.cig + 2) + LIST_GAP
    return (7 * geom.taps + 3 * slots) * 4 + slots * geom.groups * record * 2


def depthwise_weights(w_packed: np.ndarray, geom: B.BConvGeometry) -> np.ndarray:
    """tc_bconv_dw_*'s weights uint32 [taps, words(channels)] from the portable rows
    uint32 [channels, words(taps)]."""
    bits = _weight_bits(w_packed, geom)  # [channels, taps]
    return B.pack_bits(bits.T)


def _sliced_sum_cost(in_c: int) -> float:
    """Instructions of tc_bfc_xs_sum_t2 (and tc_bfc_sliced_b1_t2's sums) over in_c input
    channels: about 8.3 per channel read and 25 per part of a short last block.  It reads every
    word of 32 whole, a last word of 27 or more bits whole, blocks of 16 while 11 or more bits
    are left, then the rest rounded up to pairs in parts of 8, 4 and 2."""
    read, left = 32 * (in_c // 32), in_c % 32
    if left >= 27:
        read, left = read + 32, 0
    while left >= 11:
        read, left = read + 16, max(left - 16, 0)
    pairs = left + (left & 1)
    return 8.3 * (read + pairs) + 25 * bin(pairs).count("1")


def _word_output_cost(kind: str, nc: int) -> float:
    """Instructions of the output stage of one word of nc output channels of tc_bfc_sliced_* /
    tc_bfc_list_* (kinds f32, s8, s32), in assembly on Thumb-2: f32 of a whole word 330, of a
    partial one 115 + 10.8 per channel; s8 110 + 10.3 per channel; s32 (C) 200 + 12."""
    if kind == "f32":
        return 330 if nc == 32 else 115 + 10.8 * nc
    if kind == "s8":
        return 110 + 10.3 * nc
    return 200 + 12 * nc


def _fc_costs(in_c: int, out_c: int, kind: str) -> dict[str, float]:
    """Instructions per row of a binary dense / 1x1 layer with output `kind` (s32, f32, s8, b1)
    for "popcount" (tc_bfc_*), "sliced" (tc_bfc_sliced_*) and "list" (tc_bfc_list_*), by a cost
    model fitted to counts measured on qemu-m4 (arm-none-eabi-gcc -O2, 8x8 pixels, random
    inputs, about half of the bits 1: the list's worst case), model / measured:
      in->out  output  popcount        sliced        list
        8->8   s8        536/513       324/336       382/434
       24->8   s8        536/513       457/461       522/542
       14->42  b1      2,814/2,533     416/425       704/675
       20->60  s8      4,020/3,633   1,300/1,315   1,326/1,406
       60->20  s8      1,740/1,793     887/888       959/969
       32->32  b1      2,144/2,250     341/351       544/584
       64->64  b1      5,568/5,683   1,212/1,212   1,324/1,326
       96->96  b1     10,272/10,332  2,615/2,589   2,339/2,285
      120->40  s8      5,080/5,073   2,754/2,733   2,360/2,284
       24->16  f32     1,072/1,009     552/562       617/656
       84->28  f32     2,996/3,057   1,180/1,201   1,270/1,293
       32->32  f32     2,144/2,305     636/674       729/754
      128->128 f32    16,256/16,417  5,730/5,719   4,329/4,137
      256->64  f32    13,248/13,089  4,990/5,011   4,074/3,932
    popcount: about 47 + 20 per word of input per output channel; sliced: the sums
    (_sliced_sum_cost) per word of 32 output channels and 75 (b1: the compare in the planes)
    or 40 and the word's output stage (_word_output_cost); list: about 5 per input channel to
    list a row, then per word of 32 output channels about 3.7 per input channel (7 per listed
    bit) and 265 (b1, the compare with the scalar n1 included) or 120 and the output stage."""
    nc = [min(32, out_c - 32 * q) for q in range(B.words(out_c))]
    if kind == "b1":
        sliced = [_sliced_sum_cost(in_c) + 75 for _ in nc]
        listed = [3.68 * in_c + 265 for _ in nc]
    else:
        sliced = [_sliced_sum_cost(in_c) + 40 + _word_output_cost(kind, n) for n in nc]
        listed = [3.68 * in_c + 120 + _word_output_cost(kind, n) for n in nc]
    return {"popcount": out_c * (47 + 20 * B.words(in_c)),
            "sliced": sum(sliced), "list": 5.04 * in_c + sum(listed)}


def list_saving(rows: int, in_c: int, out_c: int, kind: str) -> float:
    """Instructions per inference that tc_bfc_list_* saves on a layer of `rows` rows over the
    cheaper of the other two, counted only where it saves at least LIST_MIN_SAVING of the
    sliced kernel's (else 0)."""
    costs = _fc_costs(in_c, out_c, kind)
    other = min(costs["popcount"], costs["sliced"])
    if costs["list"] > (1 - LIST_MIN_SAVING) * costs["sliced"] or costs["list"] >= other:
        return 0.0
    return rows * (other - costs["list"])


def fc_kernel(in_c: int, out_c: int, kind: str, list_allowed: bool = True) -> str:
    """The kernel of a binary dense / 1x1 layer: the cheapest by _fc_costs, the list only where
    list_saving counts it and the model allows it (list_pays)."""
    if not ENABLED or in_c > FC_MAX_IN_C:
        return "popcount"
    costs = _fc_costs(in_c, out_c, kind)
    if not (list_allowed and list_saving(1, in_c, out_c, kind) > 0):
        del costs["list"]
    return min(costs, key=costs.__getitem__)


def list_pays(saving: float, kinds: set[str], sparse_linked: bool) -> bool:
    """Whether a model whose layers would save `saving` instructions per inference (the sum of
    list_saving) takes tc_bfc_list_* for its layers of output `kinds`.  Its code is large and
    a binary model is small: it must save LIST_SAVING_PER_BYTE instructions per byte it adds,
    the row listing, each kind's function and the slice sums unless the model's
    tc_bconv_sparse_* link them already (`sparse_linked`).  The EEG example's networks (14 to
    120 channels) save nothing: the bit-sliced kernel is the cheaper there.  A 128-channel 1x1
    layer of 8x8 pixels behind a 3x3 binary convolution saves 61,000 (b1, 22,000 needed) to
    90,000 (f32, 75,000 needed)."""
    code = (LIST_ROW_BYTES + sum(LIST_KIND_BYTES[k] for k in kinds)
            + (0 if sparse_linked else LIST_SHARED_BYTES))
    return saving >= LIST_SAVING_PER_BYTE * code


def list_fc_weights(w_packed: np.ndarray, in_c: int, out_c: int) -> np.ndarray:
    """tc_bfc_list_*'s weights uint32 [words(out_c), in_c + 1] from tc_bfc_*'s rows: word
    (q, ic) bit j = the weight bit of output channel 32 q + j at input ic; word (q, in_c) zero
    (the position a row's odd list is padded with)."""
    return _channel_words(w_packed, in_c, out_c, in_c + 1)


def fc_weight_ones(w_packed: np.ndarray, in_c: int) -> np.ndarray:
    """tc_bfc_list_*'s wv uint16 [out_c]: each output channel's 1 weight bits."""
    return B.unpack_bits(np.asarray(w_packed, np.uint32), in_c).sum(axis=1).astype(np.uint16)


def list_fc_thresholds(thr: np.ndarray, w_packed: np.ndarray, in_c: int) -> np.ndarray:
    """tc_bfc_list_b1's thr_planes uint32 [2, words(out_c), P], P = bit length of 2 in_c + 1:
    C0 = T + Wv (rows listing their 0 bits) and C1 = Wv - T + in_c + 1 (their 1 bits), with T
    as in sliced_fc_thresholds and Wv the channel's 1 weight bits (see tc_binary.h)."""
    t = _mismatch_threshold(thr, in_c)
    wv = fc_weight_ones(w_packed, in_c).astype(np.int64)
    return _threshold_planes(np.stack([t + wv, wv - t + in_c + 1]), (2 * in_c + 1).bit_length())


def list_fc_scratch_bytes(in_c: int) -> int:
    """tc_bfc_list_scratch_size: a row's list of uint16 positions, its minority bits (at most
    in_c // 2) padded to even length."""
    return 2 * ((in_c // 2 + 2) & ~1)


def _channel_words(w_packed: np.ndarray, in_c: int, out_c: int, width: int) -> np.ndarray:
    """uint32 [words(out_c), width] from tc_bfc_*'s rows uint32 [out_c, words(in_c)]: bit j of
    word (q, ic) is the weight bit of output channel 32 q + j at input ic, zero from in_c on."""
    bits = B.unpack_bits(np.asarray(w_packed, np.uint32), in_c)  # [out_c, in_c]
    padded = np.zeros((32 * B.words(out_c), width), bool)
    padded[:out_c, :in_c] = bits
    # [q, j, ic] -> [q, ic, j]: bit j of word (q, ic)
    return B.pack_bits(padded.reshape(B.words(out_c), 32, -1).transpose(0, 2, 1))[..., 0]


def sliced_fc_weights(w_packed: np.ndarray, in_c: int, out_c: int) -> np.ndarray:
    """tc_bfc_sliced_*'s weights uint32 [words(out_c), 16 * ceil(in_c / 16)] from tc_bfc_*'s rows
    uint32 [out_c, words(in_c)]."""
    return _channel_words(w_packed, in_c, out_c, 16 * -(-in_c // 16))


def _threshold_planes(t: np.ndarray, planes: int) -> np.ndarray:
    """uint32 [..., words(C), planes] from the counts t int [..., C] (0 <= t < 2^planes): bit j of
    word (..., q, k) is bit k of t[..., 32 q + j] (zero past C)."""
    bits = (t[..., None, :] >> np.arange(planes)[:, None]) & 1  # [..., planes, C]
    padded = np.zeros((*bits.shape[:-1], 32 * B.words(t.shape[-1])), bool)
    padded[..., :t.shape[-1]] = bits
    packed = B.pack_bits(padded.reshape(*bits.shape[:-1], -1, 32))[..., 0]  # [..., planes, W]
    return np.ascontiguousarray(np.swapaxes(packed, -1, -2))


def _mismatch_threshold(thr: np.ndarray, in_c: int) -> np.ndarray:
    """T = clamp(floor((in_c - thr) / 2) + 1, 0, in_c + 1) per channel: dot = in_c - 2 M < thr
    exactly when the mismatch count M >= T."""
    return np.clip((in_c - np.asarray(thr, np.int64)) // 2 + 1, 0, in_c + 1)


def sliced_fc_thresholds(thr: np.ndarray, in_c: int) -> np.ndarray:
    """tc_bfc_sliced_b1's thr_planes uint32 [words(out_c), P] from the int32 thresholds: bit k of
    T (_mismatch_threshold); P = bit length of in_c + 1."""
    return _threshold_planes(_mismatch_threshold(thr, in_c), (in_c + 1).bit_length())


def _class_thresholds(thr: np.ndarray, w_packed: np.ndarray, geom: B.BConvGeometry
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(T, N), int64 [cls_d, cls_h, cls_w, out_c]: per padding class (as pad_corr) and output
    channel the mismatch threshold T = clamp(floor((N + pc - thr) / 2) + 1, 0, N + 1), N the
    class's valid bits and pc its padding correction (0 for zero padding), as
    dot = N - 2 M + pc < thr exactly when the mismatch count M >= T; and N."""
    signs = B.unpack_conv_weights(w_packed, geom)
    padded = B.padding_correction(replace(geom, pad_value=1), np.ones_like(signs))
    valid = geom.taps * geom.cig - padded.astype(np.int64)
    pc = B.padding_correction(geom, signs)
    corr = 0 if pc is None else pc.astype(np.int64)
    return np.clip((valid + corr - np.asarray(thr, np.int64)) // 2 + 1, 0, valid + 1), valid


def _class_tables(t: np.ndarray, planes: int) -> tuple[np.ndarray, np.ndarray]:
    """(thr_class uint16 [cls_d, cls_h, cls_w], thr_planes uint32 [tables, ..., words, planes])
    from the counts t int [cls_d, cls_h, cls_w, ..., C]: classes with equal counts share one
    table of bit planes (_threshold_planes)."""
    flat = t.reshape(int(np.prod(t.shape[:3])), -1)
    tables, index = np.unique(flat, axis=0, return_inverse=True)
    return (index.reshape(t.shape[:3]).astype(np.uint16),
            _threshold_planes(tables.reshape(-1, *t.shape[3:]), planes))


def depthwise_thresholds(thr: np.ndarray, w_packed: np.ndarray, geom: B.BConvGeometry
                         ) -> tuple[np.ndarray, np.ndarray]:
    """tc_bconv_dw_b1's (thr_class uint16 [cls_d, cls_h, cls_w], thr_planes uint32 [tables,
    words(channels), P]): per padding class the index of its table of T (_class_thresholds)
    in bit planes; P = bit length of k_d * k_h * k_w + 1.  Classes with equal tables share one
    (with zero padding T depends only on the valid taps: 4 tables for 27 classes of a 3x3x3
    kernel)."""
    return _class_tables(_class_thresholds(thr, w_packed, geom)[0], (geom.taps + 1).bit_length())


def sparse_thresholds(thr: np.ndarray, w_packed: np.ndarray, geom: B.BConvGeometry
                      ) -> tuple[np.ndarray, np.ndarray]:
    """tc_bconv_sparse_b1's (thr_class uint16 [cls_d, cls_h, cls_w], thr_planes uint32 [tables,
    2, groups, words(cog), P]): per padding class the index of its table, for windows listing
    their 0 bits (b = 0) C0 = T + Wv and for those listing their 1 bits C1 = Wv - T + N + 1
    (T, N: _class_thresholds; Wv: the channel's 1 weight bits over the class's valid taps) in
    bit planes, each group's channels from a new word; P = bit length of
    2 k_d k_h k_w cig + 1 (see tc_binary.h)."""
    t, valid = _class_thresholds(thr, w_packed, geom)
    wv = _valid_weight_bits(w_packed, geom)
    c = np.stack([t + wv, wv - t + valid + 1], axis=3)  # [cls_d, cls_h, cls_w, 2, out_c]
    by_group = np.zeros((*c.shape[:4], geom.groups, 32 * B.words(geom.cog)), np.int64)
    by_group[..., :geom.cog] = c.reshape(*c.shape[:4], geom.groups, geom.cog)
    return _class_tables(by_group, (2 * geom.taps * geom.cig + 1).bit_length())
