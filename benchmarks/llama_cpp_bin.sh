# Sourced by the compare_*.sh scripts: makes "$work/llama.cpp" a runnable copy of the llama.cpp
# binaries in "$llama_src", sets `bin` to it and defines `llama TOOL ARGS...`; exits 0 with a
# message when they cannot run on this CPU.
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
# The prebuilt copy is built for AVX-512 (its README): on a CPU without it every program dies of
# SIGILL (exit status 128 + 4) at start-up. Say so and stop, as when llama.cpp is absent, rather
# than print a table of failures; any other failure is left to show itself.
probe_status=0
llama llama-server --version > /dev/null 2>&1 || probe_status=$?
if [[ "$probe_status" == 132 ]]; then
  echo "$(basename "$0"): skipped: the llama.cpp in $llama_src cannot run on this CPU" \
       "(killed by SIGILL: it is built for AVX-512, see its README)"
  exit 0
fi
