/** Node-only: the search server's counters and latency histograms, as GET /metrics gives them (Prometheus text). */
import type { SearchService } from './service.ts';

const ROUTES = ['/', '/search', '/explain', '/info', '/health', '/metrics'];
/** A request's route for the metrics: one of ROUTES, '/photos', or 'other' (bounded label values). */
export function routeOf(url: string | undefined): string {
  const path = (url ?? '/').split('?')[0]!;
  return ROUTES.includes(path) ? path : path.startsWith('/photos/') ? '/photos' : 'other';
}

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Requests by route and status, and request latency histograms by route: what GET /metrics exposes. */
export class Metrics {
  private requests = new Map<string, number>();
  private hist = new Map<string, { counts: number[]; sum: number; n: number }>();
  observe(route: string, status: number, seconds: number): void {
    const key = `route="${route}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    let h = this.hist.get(route);
    if (!h) this.hist.set(route, (h = { counts: BUCKETS.map(() => 0), sum: 0, n: 0 }));
    BUCKETS.forEach((b, i) => { if (seconds <= b) h!.counts[i]!++; });
    h.sum += seconds;
    h.n++;
  }
  render(service: SearchService): string {
    const st = service.stats;
    const lines = [
      '# HELP sketchgpu_requests_total HTTP requests answered, by route and status.', '# TYPE sketchgpu_requests_total counter',
      ...[...this.requests].map(([k, v]) => `sketchgpu_requests_total{${k}} ${v}`),
      '# HELP sketchgpu_request_seconds Time from a request\'s arrival to its answer, by route.', '# TYPE sketchgpu_request_seconds histogram',
      ...[...this.hist].flatMap(([route, h]) => [
        ...BUCKETS.map((b, i) => `sketchgpu_request_seconds_bucket{route="${route}",le="${b}"} ${h.counts[i]}`),
        `sketchgpu_request_seconds_bucket{route="${route}",le="+Inf"} ${h.n}`, `sketchgpu_request_seconds_sum{route="${route}"} ${h.sum}`, `sketchgpu_request_seconds_count{route="${route}"} ${h.n}`]),
      '# HELP sketchgpu_queries_total Queries (and explanations) the service answered.', '# TYPE sketchgpu_queries_total counter', `sketchgpu_queries_total ${st.queries}`,
      '# HELP sketchgpu_batches_total Batches run on the GPU.', '# TYPE sketchgpu_batches_total counter', `sketchgpu_batches_total ${st.batches}`,
      '# HELP sketchgpu_largest_batch The most queries one batch has held.', '# TYPE sketchgpu_largest_batch gauge', `sketchgpu_largest_batch ${st.largestBatch}`,
      '# HELP sketchgpu_queue_waiting Queries waiting for a batch.', '# TYPE sketchgpu_queue_waiting gauge', `sketchgpu_queue_waiting ${service.queued}`,
      '# HELP sketchgpu_device_losses_total GPU devices lost (each one reloaded, or the service failed).', '# TYPE sketchgpu_device_losses_total counter', `sketchgpu_device_losses_total ${st.deviceLosses}`,
      '# HELP sketchgpu_ready 1 while queries can run.', '# TYPE sketchgpu_ready gauge', `sketchgpu_ready ${service.status === 'ready' ? 1 : 0}`,
      '# HELP sketchgpu_photos Photos in the gallery (0 with ANN: the rows are not in memory).', '# TYPE sketchgpu_photos gauge', `sketchgpu_photos ${service.index.paths.length}`,
    ];
    return `${lines.join('\n')}\n`;
  }
}
