"""The government information resource catalogue (政务信息资源目录, GB/T 21063 / 编制指南) and its DCAT mapping."""
