// CPU time per tfjs kernel: wraps every kernel registered for a backend (after initBackend,
// so our own kernels are wrapped too). process.cpuUsage counts this thread's work, which
// stays meaningful when other jobs share the machine (wall clock does not).
export function installKernelProfiler(tf, backend) {
  const stats = new Map();
  let on = false;
  for (const k of tf.getKernelsForBackend(backend)) {
    const f = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, backend);
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        if (!on) return f(args);
        const c0 = process.cpuUsage();
        const out = f(args);
        const c = process.cpuUsage(c0);
        const shapes = Object.values(args.inputs).map((t) => (t ? `(${t.shape.join(",")})` : "-"));
        const flags = `${args.attrs?.transposeA ? "ᵀ" : ""}${args.attrs?.transposeB ? " ·ᵀ" : ""}`;
        const key = `${k.kernelName} ${shapes.join(" ")}${flags}`;
        const s = stats.get(key) ?? { us: 0, n: 0, name: k.kernelName };
        s.us += c.user + c.system;
        s.n++;
        stats.set(key, s);
        return out;
      },
    });
  }
  return {
    run(fn) {
      on = true;
      try {
        return fn();
      } finally {
        on = false;
      }
    },
    /** Markdown lines: totals by kernel, then the top `top` kernel/shape pairs. */
    report(top = 15) {
      const byName = new Map();
      let total = 0;
      for (const s of stats.values()) {
        byName.set(s.name, (byName.get(s.name) ?? 0) + s.us);
        total += s.us;
      }
      const ms = (us) => (us / 1000).toFixed(1);
      const lines = [`| kernel (CPU ms, one step; all kernels ${ms(total)}) | ms | calls |`, "|---|---:|---:|"];
      for (const [name, us] of [...byName].sort((a, b) => b[1] - a[1]).slice(0, 10)) {
        const calls = [...stats.values()].filter((s) => s.name === name).reduce((a, s) => a + s.n, 0);
        lines.push(`| ${name} | ${ms(us)} | ${calls} |`);
      }
      lines.push("", "| kernel and input shapes | ms | calls |", "|---|---:|---:|");
      for (const [key, s] of [...stats].sort((a, b) => b[1].us - a[1].us).slice(0, top)) {
        lines.push(`| ${key} | ${ms(s.us)} | ${s.n} |`);
      }
      stats.clear();
      return lines.join("\n");
    },
  };
}
