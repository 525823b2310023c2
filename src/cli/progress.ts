import cliProgress from 'cli-progress';

/** A progress bar on stderr (only drawn on a terminal), with a rate in items per second. */
export function progressBar(label: string, unit: string) {
  const bar = new cliProgress.SingleBar({
    format: `${label} |{bar}| {value}/{total} ${unit} | {rate} ${unit}/s | eta {eta_formatted}`,
    stream: process.stderr, hideCursor: true, clearOnComplete: false, etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);
  let t0 = 0, v0 = 0, started = false;
  return {
    start(total: number, value = 0) {
      t0 = performance.now(); v0 = value; started = true;
      bar.start(total, value, { rate: '-' });
    },
    update(value: number) {
      const dt = (performance.now() - t0) / 1000;
      bar.update(value, { rate: dt > 0 ? ((value - v0) / dt).toFixed(1) : '-' });
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}
