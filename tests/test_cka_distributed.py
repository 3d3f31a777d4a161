"""CKAGrid.all_reduce across two gloo processes on loopback."""

import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gmn.cka import CKAGrid, cka, cka_matrix


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shared_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(90, 6, generator=g, dtype=torch.float64) + 1e4
    y = x[:, :4] * 0.5 + torch.randn(90, 4, generator=g, dtype=torch.float64)
    return x, y


def reduce_and_check(rank: int, world_size: int, port: int) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    try:
        torch.set_num_threads(1)
        x, y = shared_data()
        expected = [float(cka(x, y, debiased=d)) for d in (False, True)]

        # uneven shards, so the ranks start from different origins (first-batch means)
        rows = slice(0, 25) if rank == 0 else slice(25, 90)
        uneven = CKAGrid()
        for chunk_x, chunk_y in zip(x[rows].split(10), y[rows].split(10)):
            uneven.update({"x": chunk_x}, {"y": chunk_y})
        # rank 1 sees no data at all
        lopsided = CKAGrid()
        if rank == 0:
            lopsided.update({"x": x}, {"y": y})
        for pair in (uneven.all_reduce(), lopsided.all_reduce()):
            assert pair.n == 90
            assert torch.equal(pair.low["rows"]["x"], x.amin(dim=0))
            for debiased, value in zip((False, True), expected):
                got = pair.compute(debiased)["x", "y"]
                assert abs(got - value) < 1e-10, (rank, debiased, got, value)

        # a 2 x 2 grid, layers of different widths, rank 1 with one batch only
        rows_all = {"x": x, "x2": torch.tanh(x - 1e4)}
        cols_all = {"y": y, "y2": y[:, :2] ** 2}
        grid = CKAGrid()
        shards = [slice(k, k + 10) for k in range(0, 50, 10)] if rank == 0 else [slice(50, 90)]
        for rows in shards:
            grid.update(
                {k: v[rows] for k, v in rows_all.items()}, {k: v[rows] for k, v in cols_all.items()}
            )
        grid.all_reduce()
        expected_grid = cka_matrix(rows_all, cols_all, debiased=True).values
        assert (grid.compute(debiased=True).values - expected_grid).abs().max() < 1e-10
    finally:
        dist.destroy_process_group()


def test_all_reduce_over_two_gloo_ranks_equals_direct_value():
    mp.spawn(reduce_and_check, args=(2, free_port()), nprocs=2, join=True)
