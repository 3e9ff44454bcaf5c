"""Split a GGUF file into parts with gguf-py's own writer (the llama.cpp project's Python GGUF
library, the same splitting convert_hf_to_gguf.py --split-max-tensors does), so that emorg's reader
of split models is checked against files a third-party tool wrote.

usage: split_gguf.py IN.gguf OUT_DIR/NAME.gguf MAX_TENSORS_PER_PART
Writes OUT_DIR/NAME-00001-of-0000N.gguf ... (gguf-py's shard names).
"""

import sys

import gguf


def main():
    src, dst, max_tensors = sys.argv[1], sys.argv[2], int(sys.argv[3])
    reader = gguf.GGUFReader(src)
    arch = reader.get_field("general.architecture").contents()
    writer = gguf.GGUFWriter(dst, arch, split_max_tensors=max_tensors)
    for field in reader.fields.values():
        # The writer adds the architecture and GGUF.* header fields itself.
        if field.name == "general.architecture" or field.name.startswith("GGUF."):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    for t in reader.tensors:
        writer.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
