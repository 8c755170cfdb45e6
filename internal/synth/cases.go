package synth

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/hydroshard/hydroshard/manifest"
)

// Builtin returns Production() or XL() by name, ok=false otherwise.
func Builtin(name string) (*manifest.Case, bool) {
	switch name {
	case "production":
		return Production(), true
	case "xl":
		return XL(), true
	}
	return nil, false
}

// Production returns the production-scale case: 60 monthly stages x 3 blocks,
// 6 buses, 160 hydros in cascades, 130 thermals (10 GNL), 10 lines, 3
// pumping stations, 4 contracts, 6 non-controllables, 5 generic constraints
// and an order-2 inflow model: 28,800 hydro rows per scenario. It is built
// deterministically in code; every call returns a new, equal case.
func Production() *manifest.Case {
	return buildCase("production", "Production-scale synthetic Brazilian-style system (built in code)", 60)
}

// XL returns the larger case: the Production system over 200 stages x 3
// blocks, 96,000 hydro rows per scenario.
func XL() *manifest.Case {
	return buildCase("xl", "Production system over 200 stages (built in code)", 200)
}

var (
	prodBuses = []struct {
		name string
		sys  int32
		nH   int
		nT   int
	}{
		{"SUDESTE/CENTRO-OESTE", 1, 70, 50},
		{"SUL", 2, 35, 25},
		{"NORDESTE", 3, 20, 30},
		{"NORTE", 4, 25, 15},
		{"ACRE/RONDÔNIA", 5, 6, 5},
		{"MANAUS/AMAPÁ", 6, 4, 5},
	}
	prodRivers = [][]string{
		{"Grande", "Paranaíba", "Tietê", "Paranapanema", "Paraná", "Paraíba do Sul", "Doce", "Jequitinhonha"},
		{"Iguaçu", "Uruguai", "Jacuí", "Passo Fundo", "Chapecó", "Canoas"},
		{"São Francisco", "Parnaíba", "Jequitinhonha Norte"},
		{"Tocantins", "Xingu", "Araguaia", "Tapajós", "Teles Pires"},
		{"Madeira", "Jamari"},
		{"Araguari", "Uatumã"},
	}
	prodThermalSites = []string{
		"Santa Cruz", "Macaé", "Seropédica", "Cubatão", "Uberaba", "Jorge Lacerda", "Candiota", "Charqueadas",
		"Pecém", "Suape", "Camaçari", "Termopernambuco", "Itaqui", "Barcarena", "Porto Velho", "Mauá",
	}
	prodLines = []struct {
		name     string
		src, tgt int32
	}{
		{"Sul - Sudeste", 2, 1},
		{"Sudeste - Nordeste", 1, 3},
		{"Norte - Sudeste (Norte-Sul I)", 4, 1},
		{"Norte - Nordeste", 4, 3},
		{"Acre/Rondônia - Sudeste", 5, 1},
		{"Manaus/Amapá - Norte", 6, 4},
		{"Sul - Sudeste (circuito 2)", 2, 1},
		{"Norte - Sudeste (Norte-Sul II)", 4, 1},
		{"Nordeste - Sudeste (circuito 2)", 3, 1},
		{"Acre/Rondônia - Norte", 5, 4},
	}
)

// round rounds x to d decimals (keeps the case JSON tidy and stable).
func round(x float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(x*p) / p
}

func buildCase(name, desc string, stages int) *manifest.Case {
	// A fixed stream: the case does not depend on any seed.
	r := rand.New(rand.NewPCG(0x6879_6472_6f73_6861, 0x7264_2d63_6173_6573))
	uni := func(lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }
	logUni := func(lo, hi float64) float64 { return math.Exp(uni(math.Log(lo), math.Log(hi))) }

	c := &manifest.Case{
		Version:        manifest.CaseVersion,
		Name:           name,
		Description:    desc,
		Stages:         stages,
		Hours:          []float64{200, 300, 230},
		DiscountRate:   0.0095,
		InflowLagOrder: 2,
	}
	hydroAvgMW := make([]float64, len(prodBuses))
	thermCapMW := make([]float64, len(prodBuses))

	// Hydros: per bus, cascades of 2..8 plants with consecutive ids; the
	// last plant of a cascade has no downstream.
	var hid int32 = 1
	for bi, pb := range prodBuses {
		busID := int32(bi + 1)
		left := pb.nH
		for ci := 0; left > 0; ci++ {
			l := min(left, 2+r.IntN(7))
			if left-l == 1 {
				l++ // no cascade of a single plant
			}
			left -= l
			river := prodRivers[bi][ci%len(prodRivers[bi])]
			q0 := logUni(80, 1500)
			cum := 0.0
			for k := range l {
				incr := q0
				if k > 0 {
					incr = q0 * uni(0.05, 0.4)
				}
				cum += incr
				h := manifest.Hydro{
					ID:             hid,
					Name:           fmt.Sprintf("UHE %s %d-%d", river, ci/len(prodRivers[bi])+1, k+1),
					BusID:          busID,
					DownstreamID:   -1,
					TurbinedMaxM3s: round(cum*uni(1.2, 2.0), 1),
					Productivity:   round(uni(0.2, 1.2), 4),
					MeanInflowM3s:  round(incr, 1),
					Evaporation:    r.Float64() < 0.7,
					SpillageCost:   round(uni(0.01, 0.5), 3),
				}
				if k < l-1 {
					h.DownstreamID = hid + 1
				}
				if r.Float64() < 0.3 { // run-of-river: a narrow operating range
					h.StorageMaxHm3 = round(logUni(20, 300), 1)
					h.StorageMinHm3 = round(h.StorageMaxHm3*0.9, 1)
				} else {
					h.StorageMaxHm3 = round(logUni(300, 25000), 1)
					h.StorageMinHm3 = round(h.StorageMaxHm3*uni(0.1, 0.35), 1)
				}
				h.StorageInitialHm3 = round(h.StorageMinHm3+(h.StorageMaxHm3-h.StorageMinHm3)*uni(0.35, 0.85), 1)
				h.StorageInitialHm3 = min(max(h.StorageInitialHm3, h.StorageMinHm3), h.StorageMaxHm3)
				hydroAvgMW[bi] += h.Productivity * min(cum, h.TurbinedMaxM3s) * 0.9
				c.Hydros = append(c.Hydros, h)
				hid++
			}
		}
	}

	// Thermals: ids 1..130, every 13th is GNL.
	var tid int32 = 1
	for bi, pb := range prodBuses {
		for range pb.nT {
			site := prodThermalSites[r.IntN(len(prodThermalSites))]
			t := manifest.Thermal{
				ID:         tid,
				Name:       fmt.Sprintf("UTE %s %03d", site, tid),
				BusID:      int32(bi + 1),
				CapacityMW: round(logUni(30, 1400), 1),
				CostPerMWh: round(uni(15, 900), 2),
				GNL:        tid%13 == 0,
			}
			if t.GNL {
				t.Name = fmt.Sprintf("UTE GNL %s %03d", site, tid)
			}
			thermCapMW[bi] += t.CapacityMW
			c.Thermals = append(c.Thermals, t)
			tid++
		}
	}

	// Loads: hydro covers most of the mean load; thermal capacity is
	// scaled to half the load so that dry periods rarely end in deficit.
	for bi, pb := range prodBuses {
		load := round(1.5*hydroAvgMW[bi], 0)
		c.Buses = append(c.Buses, manifest.Bus{
			ID:          int32(bi + 1),
			Name:        pb.name,
			SystemID:    pb.sys,
			LoadMW:      load,
			DeficitCost: 5000,
			ExcessCost:  0.1,
		})
		f := 0.5 * load / thermCapMW[bi]
		for i := range c.Thermals {
			if c.Thermals[i].BusID == int32(bi+1) {
				c.Thermals[i].CapacityMW = round(c.Thermals[i].CapacityMW*f, 1)
			}
		}
	}
	for li, pl := range prodLines {
		c.Lines = append(c.Lines, manifest.Line{
			ID:           int32(li + 1),
			Name:         pl.name,
			SourceBusID:  pl.src,
			TargetBusID:  pl.tgt,
			CapacityMW:   round(logUni(800, 9000), 0),
			LossFraction: round(uni(0.01, 0.04), 4),
			CostPerMWh:   round(uni(0.01, 1), 3),
		})
	}
	// Pumping stations: from a plant to the one upstream of it, in the
	// first cascades of the SE bus.
	for k := range 3 {
		var to int32
		n := 0
		for _, h := range c.Hydros {
			if h.BusID == 1 && h.DownstreamID >= 0 {
				if n == 4*k {
					to = h.ID
					break
				}
				n++
			}
		}
		c.PumpingStations = append(c.PumpingStations, manifest.PumpingStation{
			ID:          int32(k + 1),
			Name:        fmt.Sprintf("EEB Reversível %d", k+1),
			BusID:       1,
			FromHydroID: to + 1,
			ToHydroID:   to,
			MaxFlowM3s:  round(uni(100, 400), 1),
			MWPerM3s:    round(uni(0.2, 0.9), 3),
			CostPerMWh:  round(uni(0.5, 3), 2),
		})
	}
	c.Contracts = []manifest.Contract{
		{ID: 1, Name: "Importação Argentina (Garabi)", BusID: 2, Type: "import", MaxMW: 2000, PricePerMWh: 320},
		{ID: 2, Name: "Importação Uruguai (Rivera)", BusID: 2, Type: "import", MaxMW: 500, PricePerMWh: 280},
		{ID: 3, Name: "Exportação Uruguai (Melo)", BusID: 2, Type: "export", MaxMW: 300, PricePerMWh: 95},
		{ID: 4, Name: "Exportação Venezuela (Roraima)", BusID: 4, Type: "export", MaxMW: 200, PricePerMWh: 110},
	}
	c.NonControllables = []manifest.NonControllable{
		{ID: 1, Name: "EOL Nordeste Litoral", BusID: 3, CapacityMW: 3000, CurtailmentCost: 1},
		{ID: 2, Name: "EOL Nordeste Interior", BusID: 3, CapacityMW: 2500, CurtailmentCost: 1},
		{ID: 3, Name: "EOL Sul", BusID: 2, CapacityMW: 1200, CurtailmentCost: 1.5},
		{ID: 4, Name: "UFV Sudeste", BusID: 1, CapacityMW: 1800, CurtailmentCost: 2},
		{ID: 5, Name: "UFV Nordeste", BusID: 3, CapacityMW: 2200, CurtailmentCost: 2},
		{ID: 6, Name: "PCH Sudeste", BusID: 1, CapacityMW: 900, CurtailmentCost: 5},
	}
	c.GenericConstraints = []manifest.GenericConstraint{
		{ID: 1, Name: "Recebimento Nordeste (RNE)", Penalty: 500},
		{ID: 2, Name: "Fornecimento Sul (FSUL)", Penalty: 500},
		{ID: 3, Name: "Vazão mínima São Francisco", Penalty: 1000},
		{ID: 4, Name: "Defluência mínima Paraíba do Sul", Penalty: 2000},
		{ID: 5, Name: "Reserva de potência SE", Penalty: 100},
	}
	return c
}
