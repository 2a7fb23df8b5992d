/**
 * Test helper: the tokenizer part of the GGUF metadata that llama.cpp's convert_hf_to_gguf.py writes for a model
 * whose tokenizer files are these, so that GGUF-route tests run on real vocabularies without a GGUF file. It lives
 * in formats/real-shaped.ts (built, so that other packages' tests can write real-shaped GGUF files with it).
 */
export { ggufMetadataLikeConverter, type ConvertOptions } from "../formats/real-shaped.js";
