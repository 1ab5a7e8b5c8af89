/**
 * The request-duration histogram Hearth keeps itself and hands to Prometheus when scraped: its
 * buckets are cumulative and inclusive of their upper bound, as Prometheus histograms are.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RouteStatsTable } from '../../src/metrics/route-stats.js';

describe('RouteStatsTable', () => {
  it('counts by status and puts a duration in the first bucket whose bound it does not exceed', () => {
    const table = new RouteStatsTable('d', 'durations', [0.01, 0.1]);
    const put = table.of('PUT', '/r/:id');
    assert.equal(table.of('PUT', '/r/:id'), put);
    put.answered(200, 0.01);
    put.answered(200, 0.05);
    put.answered(400, 2);
    table.of('GET', '/r/:id').answered(200, 0.001);
    assert.deepEqual([...put.byStatus], [[200, 2], [400, 1]]);

    const values = table.get().values.filter((v) => v.labels.method === 'PUT');
    const buckets = values.filter((v) => v.metricName === 'd_bucket').map((v) => [v.labels.le, v.value]);
    assert.deepEqual(buckets, [[0.01, 1], [0.1, 2], ['+Inf', 3]]);
    assert.equal(values.find((v) => v.metricName === 'd_count')?.value, 3);
    assert.ok(Math.abs(values.find((v) => v.metricName === 'd_sum')!.value - 2.06) < 1e-9);
  });
});
