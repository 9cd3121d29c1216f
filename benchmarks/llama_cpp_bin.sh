# Sourced by the compare_*.sh scripts: makes "$work/llama.cpp" a runnable copy of the llama.cpp
# binaries in "$llama_src", sets `bin` to it and defines `llama TOOL ARGS...`.
# The shared copy stores the libraries' symlinks as small files naming their targets: rebuild them.
mkdir -p "$work/llama.cpp"
bin="$(cd "$work/llama.cpp" && pwd)"
for f in "$llama_src"/*; do
  name="$(basename "$f")"
  if [[ $(stat -c %s "$f") -lt 256 && -e "$llama_src/$(cat "$f")" ]]; then
    ln -sfn "$(cat "$f")" "$bin/$name"
  else
    ln -sfn "$(cd "$(dirname "$f")" && pwd)/$name" "$bin/$name"
  fi
done
llama() { LD_LIBRARY_PATH="$bin" "$bin/$1" "${@:2}"; }
